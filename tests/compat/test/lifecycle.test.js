// Peer and room life (contract section 5): reconnection and the socket swap, the grace
// after a lost socket, deliberate disconnects, rooms closing after their last peer or
// expiring unused, and the webhooks.
'use strict';

const { test, before, after } = require('node:test');
const assert = require('node:assert/strict');
const {
  api,
  connectSocket,
  createPeer,
  createRoom,
  eventually,
  joinedPeer,
  request,
  sleep,
  startServer,
  waitNotification,
  webhookReceiver,
} = require('./helpers');

const GRACE = 800;
const CLOSE_DELAY = 600;
const IDLE = 1500;
let server;
let hooks;

before(async () => {
  hooks = await webhookReceiver();
  server = await startServer({
    PEER_RECONNECT_GRACE_MS: String(GRACE),
    ROOM_CLOSE_DELAY_MS: String(CLOSE_DELAY),
    ROOM_IDLE_EXPIRY_MS: String(IDLE),
    WEBHOOK_URL: hooks.url,
    WEBHOOK_TOKEN: 'hook-token',
  });
});
after(async () => {
  await server.stop();
  await hooks.close();
});

const roomExists = async (room) => (await api(server, 'GET', `/meetmedia/api/sessions/${room}`)).status === 200;

test('a second socket replaces the first: roomBack, old socket disconnected, peer kept', async () => {
  const room = await createRoom(server);
  const a = await joinedPeer(server, room, 3, 'Ann');
  const b = await joinedPeer(server, room, 3, 'Bob');
  const dropped = new Promise((r) => a.socket.once('disconnect', r));
  const a2 = await connectSocket(server, a.peer.query);
  await waitNotification(a2, 'roomBack');
  assert.equal(a2.notifications.find((n) => n.method === 'roomReady'), undefined);
  await dropped;
  // Still joined on the new socket; nobody saw it leave.
  assert.equal((await request(a2, 'chatMessage', { message: 'back' })).err, undefined);
  await waitNotification(b.socket, 'chatMessage', (d) => d.message === 'back');
  assert.equal(b.socket.notifications.filter((n) => n.method === 'peerClosed').length, 0);
  a2.close();
  b.socket.close();
});

test('a lost socket keeps its peer for the grace, a reconnection gets roomBack', async () => {
  const room = await createRoom(server);
  const a = await joinedPeer(server, room, 3, 'Ann');
  const b = await joinedPeer(server, room, 3, 'Bob');
  a.socket.io.engine.close(); // transport close, not a deliberate disconnect
  await sleep(GRACE / 2);
  const a2 = await connectSocket(server, a.peer.query);
  await waitNotification(a2, 'roomBack');
  await sleep(GRACE);
  assert.equal(b.socket.notifications.filter((n) => n.method === 'peerClosed').length, 0);
  // Lost again and not back: closed after the grace.
  const lostAt = Date.now();
  a2.io.engine.close();
  const closed = await waitNotification(b.socket, 'peerClosed', (d) => d.peerId === a.peer.id, 5000);
  assert.ok(closed);
  assert.ok(Date.now() - lostAt >= GRACE - 50, 'not before the grace');
  // Its token is gone with it.
  const err = await connectSocket(server, a.peer.query, { expectError: true });
  assert.match(err.message, /peer/);
  b.socket.close();
});

test('a deliberate disconnect closes the peer at once', async () => {
  const room = await createRoom(server);
  const a = await joinedPeer(server, room, 3, 'Ann');
  const b = await joinedPeer(server, room, 3, 'Bob');
  const t0 = Date.now();
  a.socket.disconnect();
  await waitNotification(b.socket, 'peerClosed', (d) => d.peerId === a.peer.id, GRACE);
  assert.ok(Date.now() - t0 < GRACE, 'well before the grace');
  b.socket.close();
});

test('the room closes after its last peer left, with a webhook, unless someone comes back', async () => {
  const room = await createRoom(server);
  const a = await joinedPeer(server, room, 3, 'Ann');
  a.socket.disconnect();
  await sleep(CLOSE_DELAY / 2);
  const b = await joinedPeer(server, room, 3, 'Bob');
  await sleep(CLOSE_DELAY);
  assert.ok(await roomExists(room), 'someone came back in time');
  b.socket.disconnect();
  await eventually(async () => !(await roomExists(room)), 5000, 'room closed');
  const hook = await eventually(() => hooks.hooks.find((h) => h.json && h.json.roomId === room), 5000, 'roomClosed webhook');
  assert.deepEqual(hook.json, { roomId: room, event: 'roomClosed' });
  assert.equal(hook.headers['x-auth-token'], 'hook-token');
  assert.match(hook.headers['content-type'], /application\/json/);
});

test('a room nobody joins expires', async () => {
  const room = await createRoom(server);
  assert.ok(await roomExists(room));
  await eventually(async () => !(await roomExists(room)), IDLE + 3000, 'unused room expired');
  await eventually(() => hooks.hooks.find((h) => h.json && h.json.roomId === room && h.json.event === 'roomClosed'), 3000, 'webhook');
});

test('kickPeer: the target is told and disconnected, the others see it leave', async () => {
  const room = await createRoom(server);
  const mod = await joinedPeer(server, room, 4, 'Mod');
  const v = await joinedPeer(server, room, 3, 'Victim');
  const gone = new Promise((r) => v.socket.once('disconnect', r));
  const r = await request(mod.socket, 'moderator:kickPeer', { peerId: v.peer.id });
  assert.equal(r.err, undefined);
  await waitNotification(v.socket, 'moderator:kickPeer');
  await gone;
  await waitNotification(mod.socket, 'peerClosed', (d) => d.peerId === v.peer.id);
  const nope = await request(v.socket.connected ? v.socket : mod.socket, 'moderator:kickPeer', { peerId: v.peer.id });
  assert.equal(nope.err, 404);
  mod.socket.close();
});

test('closeRoom: OWNER only; the others are told, the room is gone, webhook sent', async () => {
  const room = await createRoom(server);
  const owner = await joinedPeer(server, room, 16 | 4, 'Owner');
  const mod = await joinedPeer(server, room, 4, 'Mod');
  const denied = await request(mod.socket, 'moderator:closeRoom', {});
  assert.equal(denied.err, 403);
  assert.match(denied.res, /OWNER/);
  const r = await request(owner.socket, 'moderator:closeRoom', {});
  assert.equal(r.err, undefined);
  await waitNotification(mod.socket, 'moderator:closeRoom');
  assert.equal(owner.socket.notifications.filter((n) => n.method === 'moderator:closeRoom').length, 0);
  assert.equal(await roomExists(room), false);
  await eventually(() => hooks.hooks.find((h) => h.json && h.json.roomId === room && h.json.event === 'roomClosed'), 3000, 'webhook');
});

test('join requests go to the webhook', async () => {
  const room = await createRoom(server);
  const mod = await joinedPeer(server, room, 4, 'Mod');
  const sub = await joinedPeer(server, room, 1, 'Sub');
  assert.equal((await request(mod.socket, 'moderator:joinRequestAccept', { requestId: 'req-1' })).err, undefined);
  assert.equal((await request(mod.socket, 'moderator:joinRequestDeny', { requestId: 'req-2' })).err, undefined);
  const denied = await request(sub.socket, 'moderator:joinRequestAccept', { requestId: 'req-3' });
  assert.equal(denied.err, 403);
  const a = await eventually(() => hooks.hooks.find((h) => h.json && h.json.requestId === 'req-1'), 3000, 'accept hook');
  assert.deepEqual(a.json, { requestId: 'req-1', roomId: room, event: 'joinRequestAccepted' });
  const d = await eventually(() => hooks.hooks.find((h) => h.json && h.json.requestId === 'req-2'), 3000, 'deny hook');
  assert.deepEqual(d.json, { requestId: 'req-2', roomId: room, event: 'joinRequestDenied' });
  await sleep(100);
  assert.equal(hooks.hooks.find((h) => h.json && h.json.requestId === 'req-3'), undefined);
  mod.socket.close();
  sub.socket.close();
});

test('a webhook endpoint that is down does not disturb signaling', async () => {
  const dead = await startServer({ WEBHOOK_URL: 'http://127.0.0.1:9/hook' });
  try {
    const room = await createRoom(dead);
    const mod = await joinedPeer(dead, room, 4, 'Mod');
    for (let i = 0; i < 5; i++) {
      assert.equal((await request(mod.socket, 'moderator:joinRequestAccept', { requestId: `r${i}` })).err, undefined);
    }
    assert.equal((await request(mod.socket, 'ping')).err, undefined);
    await eventually(() => /webhook failed/.test(dead.stderr), 5000, 'failure logged');
  } finally {
    await dead.stop();
  }
});

test('a peer token created for an empty room keeps the room open until it expires', async () => {
  const room = await createRoom(server);
  const a = await joinedPeer(server, room, 3, 'Ann');
  a.socket.disconnect();
  await sleep(CLOSE_DELAY / 3);
  const p = await createPeer(server, room, 3);
  await sleep(CLOSE_DELAY);
  assert.ok(await roomExists(room));
  const s = await connectSocket(server, p.query);
  await waitNotification(s, 'roomReady');
  s.disconnect();
});
