// Signaling connections (contract section 4, 5): checks, roomReady with TURN credentials,
// both paths, Engine.IO v3, and the router capabilities loaded by mediasoup-client.
'use strict';

const { test, before, after } = require('node:test');
const assert = require('node:assert/strict');
const crypto = require('node:crypto');
const path = require('node:path');
const WebSocket = require('ws');
const { Device } = require('mediasoup-client');
const {
  connectSocket,
  createPeer,
  createRoom,
  eventually,
  request,
  startServer,
  waitNotification,
} = require('./helpers');

const msLib = path.dirname(require.resolve('mediasoup-client'));
const { FakeHandler } = require(path.join(msLib, 'handlers/FakeHandler.js'));
const fakeParameters = require(path.join(msLib, 'test/fakeParameters.js'));

const TURN = 'turn:127.0.0.1:3478?transport=tcp';
const SECRET = 's3cret';
let server;

before(async () => {
  server = await startServer({ TURN_SERVER: TURN, TURN_STATIC_SECRET: SECRET });
});
after(async () => server.stop());

test('roomReady carries coturn REST credentials', async () => {
  const room = await createRoom(server);
  const peer = await createPeer(server, room, 3);
  const socket = await connectSocket(server, peer.query);
  const ready = await waitNotification(socket, 'roomReady');
  assert.equal(ready.data.roomId, room);
  const [ice] = ready.data.iceServers;
  assert.deepEqual(ice.urls, [TURN]);
  const [expiry, who] = ice.username.split(':');
  assert.equal(who, peer.id);
  const expected = Math.floor(Date.now() / 1000) + 86400;
  assert.ok(Math.abs(Number(expiry) - expected) <= 5, `expiry ${expiry} vs ${expected}`);
  const mac = crypto.createHmac('sha1', SECRET).update(ice.username).digest('base64');
  assert.equal(ice.credential, mac);
  socket.close();
});

test('iceServers is null without TURN', async () => {
  const plain = await startServer();
  try {
    const room = await createRoom(plain);
    const peer = await createPeer(plain, room, 3);
    const socket = await connectSocket(plain, peer.query);
    const ready = await waitNotification(socket, 'roomReady');
    assert.equal(ready.data.iceServers, null);
  } finally {
    await plain.stop();
  }
});

test('both signaling paths work', async () => {
  const room = await createRoom(server);
  for (const p of ['/meetmedia/signaling', '/meetmedia/signaling/']) {
    const peer = await createPeer(server, room, 1);
    const socket = await connectSocket(server, peer.query, { path: p });
    await waitNotification(socket, 'roomReady');
    socket.close();
  }
});

test('refused connections say why', async () => {
  const room = await createRoom(server);
  const other = await createRoom(server);
  const peer = await createPeer(server, room, 3);
  const stranger = await createPeer(server, other, 3);
  const q = peer.query;
  const cases = [
    [{ roomId: q.roomId, authToken: q.authToken }, /peerId/],
    [{ peerId: q.peerId, authToken: q.authToken }, /roomId/],
    [{ peerId: q.peerId, roomId: q.roomId }, /authToken/],
    [{ ...q, roomId: '00000000-0000-4000-8000-000000000000' }, /room/],
    [{ ...q, peerId: '00000000-0000-4000-8000-000000000000' }, /peer/],
    [{ ...stranger.query, roomId: room }, /another room/],
    [{ ...q, authToken: '0'.repeat(32) }, /authToken/],
  ];
  for (const [query, reason] of cases) {
    const err = await connectSocket(server, query, { expectError: true });
    assert.match(err.message, reason, JSON.stringify(query));
  }
  // The right query still works afterwards.
  const socket = await connectSocket(server, q);
  await waitNotification(socket, 'roomReady');
  socket.close();
});

test('getRouterRtpCapabilities loads into mediasoup-client Device', async () => {
  const room = await createRoom(server);
  const peer = await createPeer(server, room, 3);
  const socket = await connectSocket(server, peer.query);
  await waitNotification(socket, 'roomReady');
  const { err, res: caps } = await request(socket, 'getRouterRtpCapabilities');
  assert.equal(err, null);
  const mimes = caps.codecs.filter((c) => c.mimeType !== 'video/rtx').map((c) => c.mimeType);
  assert.deepEqual(mimes, ['audio/opus', 'video/VP8', 'video/VP9', 'video/H264', 'video/H264']);
  const h264 = caps.codecs.filter((c) => c.mimeType === 'video/H264').map((c) => c.parameters['profile-level-id']);
  assert.deepEqual(h264, ['4d0032', '42e01f']);
  const vp8 = caps.codecs.find((c) => c.mimeType === 'video/VP8');
  const rtx = caps.codecs.find((c) => c.mimeType === 'video/rtx' && c.parameters.apt === vp8.preferredPayloadType);
  assert.ok(rtx, 'VP8 has RTX');
  const fb = vp8.rtcpFeedback.map((f) => `${f.type} ${f.parameter}`.trim());
  for (const want of ['nack', 'nack pli', 'ccm fir', 'goog-remb', 'transport-cc']) assert.ok(fb.includes(want), want);
  assert.ok(caps.codecs[0].rtcpFeedback.some((f) => f.type === 'transport-cc'));
  const device = new Device({ handlerFactory: FakeHandler.createFactory(fakeParameters) });
  await device.load({ routerRtpCapabilities: caps });
  assert.equal(device.loaded, true);
  assert.equal(device.canProduce('audio'), true);
  assert.equal(device.canProduce('video'), true);
  // The device's capabilities are accepted by join.
  const join = await request(socket, 'join', { nickname: 'Dev', rtpCapabilities: device.rtpCapabilities });
  assert.equal(join.err, null);
  socket.close();
});

function rawSocket(server, query) {
  const qs = new URLSearchParams(query).toString();
  const ws = new WebSocket(`ws://127.0.0.1:${server.port}/meetmedia/signaling/?${qs}`);
  ws.frames = [];
  ws.on('message', (d) => ws.frames.push(d.toString()));
  return new Promise((resolve, reject) => {
    ws.once('open', () => resolve(ws));
    ws.once('error', reject);
  });
}

test('Engine.IO v3 clients connect implicitly and ping the server', async () => {
  const room = await createRoom(server);
  const peer = await createPeer(server, room, 3);
  const ws = await rawSocket(server, { ...peer.query, EIO: '3', transport: 'websocket' });
  await eventually(() => ws.frames.length >= 3, 3000, 'open, connect and roomReady');
  const open = JSON.parse(ws.frames[0].slice(1));
  assert.equal(ws.frames[0][0], '0');
  assert.deepEqual(open.upgrades, []);
  assert.equal(open.pingInterval, 25000);
  assert.equal(open.pingTimeout, 20000);
  assert.equal(ws.frames[1], '40');
  const ready = JSON.parse(ws.frames[2].slice(2));
  assert.equal(ready[0], 'notification');
  assert.equal(ready[1].method, 'roomReady');
  ws.send('2');
  await eventually(() => ws.frames.includes('3'), 3000, 'pong');
  ws.send('420["request",{"method":"ping"}]');
  await eventually(() => ws.frames.find((f) => f.startsWith('430')), 3000, 'ack');
  assert.ok(['430[]', '430[null]'].includes(ws.frames.find((f) => f.startsWith('430'))));
  ws.close();
});

test('Engine.IO v4 raw handshake matches socket.io', async () => {
  const room = await createRoom(server);
  const peer = await createPeer(server, room, 3);
  const ws = await rawSocket(server, { ...peer.query, EIO: '4', transport: 'websocket' });
  await eventually(() => ws.frames.length >= 1, 3000, 'open');
  const open = JSON.parse(ws.frames[0].slice(1));
  assert.ok(open.sid.length > 0);
  assert.equal(open.maxPayload, 1000000);
  ws.send('40');
  await eventually(() => ws.frames.length >= 3, 3000, 'connect and roomReady');
  assert.match(ws.frames[1], /^40\{"sid":"[^"]+"\}$/);
  ws.close();
});

test('unsupported protocol versions and polling are refused', async () => {
  const r = await fetch(`${server.base}/meetmedia/signaling/?EIO=4&transport=polling`);
  assert.equal(r.status, 400);
  const room = await createRoom(server);
  const peer = await createPeer(server, room, 3);
  await assert.rejects(rawSocket(server, { ...peer.query, EIO: '9', transport: 'websocket' }));
});
