// HTTP API (contract section 3) against the real binary.
'use strict';

const { test, before, after } = require('node:test');
const assert = require('node:assert/strict');
const { api, createRoom, createPeer, startServer, connectSocket, joinedPeer, waitNotification } = require('./helpers');

const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/;
let server;

before(async () => {
  server = await startServer();
});
after(async () => server.stop());

test('GET /ping answers PONG without a token', async () => {
  const r = await fetch(`${server.base}/ping`);
  assert.equal(r.status, 200);
  assert.equal(await r.text(), 'PONG');
});

test('API requests need the token: 403 with an empty body otherwise', async () => {
  for (const headers of [{}, { 'X-Auth-Token': 'wrong' }, { 'X-Auth-Token': '' }]) {
    const r = await fetch(`${server.base}/meetmedia/api/sessions`, { headers });
    assert.equal(r.status, 403);
    assert.equal(await r.text(), '');
    assert.ok(r.headers.get('strict-transport-security'));
  }
  const r = await fetch(`${server.base}/meetmedia/api/sessions`, { method: 'POST' });
  assert.equal(r.status, 403);
});

test('ping and health', async () => {
  const p = await api(server, 'GET', '/meetmedia/api/ping');
  assert.equal(p.status, 200);
  assert.equal(p.text, 'PONG');
  const h = await api(server, 'GET', '/meetmedia/api/health');
  assert.equal(h.status, 200);
  assert.deepEqual(h.json, { success: true, message: 'Healthy' });
  assert.match(h.headers.get('strict-transport-security'), /max-age=\d+/);
});

test('sessions: create, list, check', async () => {
  const before = Math.floor(Date.now() / 1000);
  const r = await api(server, 'POST', '/meetmedia/api/sessions');
  assert.equal(r.status, 200);
  assert.match(r.json.id, UUID);
  const list = await api(server, 'GET', '/meetmedia/api/sessions');
  assert.equal(list.status, 200);
  const entry = list.json.find((s) => s.roomId === r.json.id);
  assert.ok(entry, 'new room listed');
  assert.ok(entry.createdAt >= before - 1 && entry.createdAt <= before + 5, `createdAt ${entry.createdAt}`);
  const ok = await api(server, 'GET', `/meetmedia/api/sessions/${r.json.id}`);
  assert.equal(ok.status, 200);
  assert.equal(ok.text, '');
  const missing = await api(server, 'GET', '/meetmedia/api/sessions/00000000-0000-4000-8000-000000000000');
  assert.equal(missing.status, 404);
  assert.equal(missing.text, '');
  const garbage = await api(server, 'GET', '/meetmedia/api/sessions/not-a-room');
  assert.equal(garbage.status, 404);
});

test('connection: a peer with a signaling URL', async () => {
  const room = await createRoom(server);
  const r = await api(server, 'POST', `/meetmedia/api/sessions/${room}/connection`, { body: { role: 6 } });
  assert.equal(r.status, 200);
  assert.match(r.json.id, UUID);
  const url = new URL(r.json.token);
  assert.equal(url.protocol, 'ws:');
  assert.equal(url.host, `127.0.0.1:${server.port}`);
  assert.equal(url.searchParams.get('peerId'), r.json.id);
  assert.equal(url.searchParams.get('roomId'), room);
  assert.match(url.searchParams.get('authToken'), /^[0-9a-f]{32}$/);
  const missing = await api(server, 'POST', '/meetmedia/api/sessions/00000000-0000-4000-8000-000000000000/connection', { body: { role: 1 } });
  assert.equal(missing.status, 404);
});

test('connection: url-encoded body and role checks', async () => {
  const room = await createRoom(server);
  const r = await api(server, 'POST', `/meetmedia/api/sessions/${room}/connection`, {
    body: 'role=6',
    headers: { 'Content-Type': 'application/x-www-form-urlencoded' },
  });
  assert.equal(r.status, 200);
  // The role reaches the peer: its join answer says so.
  const url = new URL(r.json.token);
  const socket = await connectSocket(server, Object.fromEntries(url.searchParams));
  await waitNotification(socket, 'roomReady');
  const join = await new Promise((res) => socket.emit('request', { method: 'join', data: {} }, (e, d) => res(d)));
  assert.equal(join.role, 6);
  socket.close();
  for (const body of [{ role: 64 }, { role: 'x' }, { role: -1 }, [1, 2]]) {
    const bad = await api(server, 'POST', `/meetmedia/api/sessions/${room}/connection`, { body });
    assert.equal(bad.status, 400, JSON.stringify(body));
    assert.ok(bad.json.error.length > 0);
  }
});

test('malformed JSON is a 400 with a reason', async () => {
  const room = await createRoom(server);
  const r = await api(server, 'POST', `/meetmedia/api/sessions/${room}/connection`, { body: '{"role": ' });
  assert.equal(r.status, 400);
  assert.match(r.json.error, /JSON/);
  const s = await api(server, 'POST', '/meetmedia/api/signal', { body: '[[[' });
  assert.equal(s.status, 400);
});

test('bodies over 5 MB are refused with 413', async () => {
  const big = 'x'.repeat(5 * 1024 * 1024 + 10);
  const r = await api(server, 'POST', '/meetmedia/api/signal', { body: big });
  assert.equal(r.status, 413);
  // The server goes on.
  assert.equal((await api(server, 'GET', '/meetmedia/api/ping')).text, 'PONG');
});

test('unknown paths are 404', async () => {
  assert.equal((await api(server, 'GET', '/meetmedia/api/nothing')).status, 404);
  assert.equal((await api(server, 'GET', '/nothing')).status, 404);
  assert.equal((await api(server, 'GET', '/demo/nothing')).status, 404);
  assert.equal((await api(server, 'GET', '/meetmedia/nothing')).status, 404);
  // `/` is the meeting page on a loopback listener (DEMO_PAGE=auto; see
  // tests/browser/test/meeting_page.test.js), and no API path.
  const page = await api(server, 'GET', '/');
  assert.equal(page.status, 200);
  assert.match(page.text, /<script src="\/demo\/meeting.js"/);
});

test('signal: to all connected peers, or by role', async () => {
  const room = await createRoom(server);
  const mod = await joinedPeer(server, room, 4, 'Mod');
  const sub = await joinedPeer(server, room, 1, 'Sub');
  let r = await api(server, 'POST', '/meetmedia/api/signal', { body: { roomId: room, type: 'joinRequest', role: 4, data: { requestId: 'r1' } } });
  assert.equal(r.status, 200);
  assert.deepEqual(r.json, {});
  const got = await waitNotification(mod.socket, 'signal:joinRequest');
  assert.deepEqual(got.data, { requestId: 'r1' });
  r = await api(server, 'POST', '/meetmedia/api/signal', { body: { roomId: room, type: 'all', data: 7 } });
  assert.equal(r.status, 200);
  await waitNotification(sub.socket, 'signal:all', (d) => d === 7);
  assert.equal(sub.socket.notifications.filter((n) => n.method === 'signal:joinRequest').length, 0);
  const unknown = await api(server, 'POST', '/meetmedia/api/signal', { body: { roomId: '00000000-0000-4000-8000-000000000000', type: 'x' } });
  assert.equal(unknown.status, 404);
  const noType = await api(server, 'POST', '/meetmedia/api/signal', { body: { roomId: room } });
  assert.equal(noType.status, 400);
  mod.socket.close();
  sub.socket.close();
});

test('stats: rooms with their peers', async () => {
  const room = await createRoom(server);
  const a = await joinedPeer(server, room, 2, 'Ann');
  const r = await api(server, 'GET', '/meetmedia/api/stats');
  assert.equal(r.status, 200);
  const entry = r.json.rooms.find((x) => x.id === room);
  assert.ok(entry);
  const p = entry.peers.find((x) => x.id === a.peer.id);
  assert.equal(p.nickname, 'Ann');
  assert.equal(p.joined, true);
  assert.equal(p.connected, true);
  assert.deepEqual(p.transports, []);
  assert.deepEqual(p.producers, []);
  assert.deepEqual(p.consumers, []);
  a.socket.close();
});

test('createPeer helper works for the other suites', async () => {
  const room = await createRoom(server);
  const p = await createPeer(server, room, 1);
  assert.match(p.id, UUID);
});
