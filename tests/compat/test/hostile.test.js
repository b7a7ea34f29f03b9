// Hostile input on the signaling and HTTP port: bytes that are not Engine.IO, sockets
// that never answer pings, oversized and malformed frames, and churn. Each gets a clear
// end, and the server and every other room go on working.
'use strict';

const { test, before, after } = require('node:test');
const assert = require('node:assert/strict');
const net = require('node:net');
const WebSocket = require('ws');
const {
  api,
  createPeer,
  createRoom,
  eventually,
  joinedPeer,
  request,
  startServer,
  waitNotification,
} = require('./helpers');

let server;

before(async () => {
  server = await startServer({ PING_INTERVAL_MS: '300', PING_TIMEOUT_MS: '300', PEER_RECONNECT_GRACE_MS: '300' });
});
after(async () => server.stop());

function raw(query, eio = '4') {
  const qs = new URLSearchParams({ ...query, EIO: eio, transport: 'websocket' }).toString();
  const ws = new WebSocket(`ws://127.0.0.1:${server.port}/meetmedia/signaling/?${qs}`);
  ws.frames = [];
  ws.closed = new Promise((r) => ws.on('close', (code) => r(code)));
  ws.on('message', (d) => ws.frames.push(d.toString()));
  ws.on('error', () => {});
  return new Promise((resolve, reject) => {
    ws.once('open', () => resolve(ws));
    ws.once('error', reject);
  });
}

test('bytes that are not Engine.IO close that socket only', async () => {
  const room = await createRoom(server);
  const other = await joinedPeer(server, room, 3, 'Other');
  const p = await createPeer(server, room, 3);
  for (const junk of ['hello', '', '9999', '42not json', '42[]', '42[5]', '451-["x",{"_placeholder":true,"num":0}]', '43x[]', '\u0000\u0001']) {
    const ws = await raw(p.query);
    ws.send('40');
    await eventually(() => ws.frames.some((f) => f.includes('roomReady') || f.includes('roomBack')), 3000, 'connected');
    ws.send(junk);
    const code = await Promise.race([ws.closed, new Promise((r) => setTimeout(() => r('open'), 3000))]);
    assert.notEqual(code, 'open', `still open after ${JSON.stringify(junk)}`);
  }
  const bin = await raw(p.query);
  bin.send(Buffer.from([1, 2, 3]));
  assert.equal(await bin.closed, 1003);
  const big = await raw(p.query);
  big.send('4' + 'x'.repeat(1_100_000));
  assert.equal(await big.closed, 1009);
  assert.equal((await request(other.socket, 'ping')).err, undefined);
  other.socket.close();
});

test('a socket that never answers pings is closed after interval + timeout', async () => {
  const room = await createRoom(server);
  const watcher = await joinedPeer(server, room, 3, 'Watcher');
  const p = await createPeer(server, room, 3);
  const ws = await raw(p.query);
  ws.send('40');
  await eventually(() => ws.frames.some((f) => f.includes('roomReady')), 3000, 'connected');
  ws.send('42' + '1' + JSON.stringify(['request', { method: 'join', data: { nickname: 'Mute' } }]));
  await eventually(() => ws.frames.some((f) => f.startsWith('431')), 3000, 'join ack');
  const t0 = Date.now();
  await ws.closed; // pings ('2') are never answered
  const took = Date.now() - t0;
  assert.ok(ws.frames.includes('2'), 'the server pinged');
  assert.ok(took >= 250 && took < 3000, `closed after ${took} ms`);
  // Then the grace runs out and the others see the peer leave.
  await waitNotification(watcher.socket, 'peerClosed', (d) => d.peerId === p.id, 3000);
  // The well-behaved client (socket.io answers pings) is still there.
  assert.equal((await request(watcher.socket, 'ping')).err, undefined);
  watcher.socket.close();
});

test('garbage on the HTTP port gets a 400 and the server goes on', async () => {
  for (const junk of ['\x16\x03\x01\x02\x00\x01\x00', 'GET / HTTP/9.9\r\n\r\n', 'NOT HTTP AT ALL\r\n\r\n']) {
    const reply = await new Promise((resolve) => {
      const s = net.connect(server.port, '127.0.0.1', () => s.write(junk));
      let data = '';
      s.on('data', (d) => (data += d));
      s.on('close', () => resolve(data));
      s.on('error', () => resolve(data));
      setTimeout(() => s.destroy(), 3000);
    });
    assert.match(reply, /^HTTP\/1\.1 (400|505)/, JSON.stringify(junk));
  }
  assert.equal((await api(server, 'GET', '/meetmedia/api/ping')).text, 'PONG');
});

test('a thousand sockets opening and closing leave the server serving', async () => {
  const room = await createRoom(server);
  const p = await createPeer(server, room, 3);
  for (let batch = 0; batch < 10; batch++) {
    const socks = await Promise.all(
      Array.from({ length: 100 }, (_, i) =>
        (i % 2 ? raw(p.query) : raw({ peerId: 'x', roomId: 'y', authToken: 'z' })).catch(() => null),
      ),
    );
    for (const s of socks) if (s) s.terminate();
  }
  const plain = await Promise.all(
    Array.from({ length: 200 }, () => new Promise((r) => {
      const s = net.connect(server.port, '127.0.0.1', () => {
        s.destroy();
        r();
      });
      s.on('error', r);
    })),
  );
  assert.equal(plain.length, 200);
  assert.equal((await fetch(`${server.base}/ping`).then((r) => r.text())), 'PONG');
  const a = await joinedPeer(server, room, 3, 'After');
  assert.equal((await request(a.socket, 'ping')).err, undefined);
  a.socket.close();
});
