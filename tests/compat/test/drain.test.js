// Graceful drain (issue 10) with the real binary and real socket.io clients: SIGTERM stops
// new rooms but not the rooms in progress, which close by the room rules or at
// DRAIN_TIMEOUT with their roomClosed webhooks, then the process exits 0; a second signal
// stops it at once.
'use strict';

const test = require('node:test');
const assert = require('node:assert/strict');
const fs = require('node:fs');
const {
  api,
  createPeer,
  createRoom,
  eventually,
  joinedPeer,
  request,
  sleep,
  startServer,
  waitNotification,
  webhookReceiver,
} = require('./helpers.js');

/** Resolves with the exit {code, signal}, or fails after `ms`. */
function exitWithin(server, ms, what) {
  return Promise.race([
    server.exitPromise,
    sleep(ms).then(() => {
      throw new Error(`the server did not exit within ${ms} ms (${what})\n${server.stderr.slice(-3000)}`);
    }),
  ]);
}

const roomClosed = (hooks, room) => hooks.hooks.find((h) => h.json && h.json.roomId === room && h.json.event === 'roomClosed');

/** Resolves with the reason once the socket is disconnected. */
const disconnected = (socket) =>
  new Promise((resolve) => (socket.connected ? socket.once('disconnect', resolve) : resolve('already')));

test('SIGTERM: no new rooms, the room goes on, DRAIN_TIMEOUT closes it with its webhook, exit 0', { timeout: 60000 }, async () => {
  const hooks = await webhookReceiver();
  const server = await startServer({ WEBHOOK_URL: hooks.url, WEBHOOK_TOKEN: 'hook-secret', DRAIN_TIMEOUT: '4' });
  try {
    const room = await createRoom(server);
    const idle = await createRoom(server);
    const a = await joinedPeer(server, room, 31, 'A');
    const b = await joinedPeer(server, room, 31, 'B');
    const gone = [disconnected(a.socket), disconnected(b.socket)];
    const signalledAt = Date.now();
    server.proc.kill('SIGTERM');

    // No new room, with a 503 that says why; health says draining.
    await eventually(() => /stop signal: draining/.test(server.stderr), 5000, 'drain logged');
    const refused = await api(server, 'POST', '/meetmedia/api/sessions');
    assert.equal(refused.status, 503);
    assert.match(refused.json.error, /draining/);
    const health = await api(server, 'GET', '/meetmedia/api/health');
    assert.equal(health.status, 503);
    assert.equal(health.json.success, false);
    assert.match(health.json.message, /^draining/);

    // The room in progress is served: API calls, new peers, signaling.
    assert.equal((await api(server, 'GET', `/meetmedia/api/sessions/${room}`)).status, 200);
    const listed = await api(server, 'GET', '/meetmedia/api/sessions');
    assert.deepEqual(listed.json.map((s) => s.roomId).sort(), [room, idle].sort());
    await createPeer(server, room, 1);
    const { err } = await request(a.socket, 'chatMessage', { message: 'during the drain' });
    assert.equal(err ?? null, null);
    await waitNotification(b.socket, 'chatMessage', (d) => d.message === 'during the drain');
    const signal = await api(server, 'POST', '/meetmedia/api/signal', { body: { roomId: room, type: 'notice', data: { x: 1 } } });
    assert.equal(signal.status, 200);
    await waitNotification(a.socket, 'signal:notice', (d) => d.x === 1);

    // The peers stay; at DRAIN_TIMEOUT the rooms are closed and the process exits 0.
    const exit = await exitWithin(server, 20000, 'DRAIN_TIMEOUT=4 passed');
    const elapsed = Date.now() - signalledAt;
    assert.deepEqual(exit, { code: 0, signal: null }, server.stderr.slice(-3000));
    assert.ok(elapsed >= 3500, `exited after ${elapsed} ms, before DRAIN_TIMEOUT`);
    assert.deepEqual(await Promise.all(gone), ['io server disconnect', 'io server disconnect']);
    for (const r of [room, idle]) {
      const hook = await eventually(() => roomClosed(hooks, r), 2000, `roomClosed webhook of ${r}`);
      assert.deepEqual(hook.json, { roomId: r, event: 'roomClosed' });
      assert.equal(hook.headers['x-auth-token'], 'hook-secret');
    }
    assert.match(server.stderr, /drain timeout passed, closing the rooms still open/);
    assert.match(server.stderr, /draining: every room is closed/);
    assert.ok(!fs.existsSync(server.consolePath), 'console socket removed');
  } finally {
    await server.stop();
    await hooks.close();
  }
});

test('SIGTERM: a room that empties closes 10 s after its last peer (room rules), then exit 0', { timeout: 60000 }, async () => {
  const hooks = await webhookReceiver();
  const server = await startServer({ WEBHOOK_URL: hooks.url, DRAIN_TIMEOUT: '600' });
  try {
    const room = await createRoom(server);
    const a = await joinedPeer(server, room, 31, 'A');
    const b = await joinedPeer(server, room, 31, 'B');
    server.proc.kill('SIGTERM');
    await eventually(() => /stop signal: draining/.test(server.stderr), 5000, 'drain logged');
    // Several seconds later the room and its peers are still there.
    await sleep(3000);
    assert.equal(server.exited, null);
    assert.equal((await api(server, 'GET', `/meetmedia/api/sessions/${room}`)).status, 200);
    assert.ok(a.socket.connected && b.socket.connected);
    assert.equal((await request(b.socket, 'ping', {})).err ?? null, null);
    assert.equal(roomClosed(hooks, room), undefined);
    // They leave: the contract's close delay (10 s), the webhook, exit 0.
    a.socket.disconnect();
    b.socket.disconnect();
    const leftAt = Date.now();
    const exit = await exitWithin(server, 30000, 'the room emptied');
    const elapsed = Date.now() - leftAt;
    assert.deepEqual(exit, { code: 0, signal: null }, server.stderr.slice(-3000));
    assert.ok(elapsed >= 9000, `exited ${elapsed} ms after the last peer left, before the 10 s close delay`);
    await eventually(() => roomClosed(hooks, room), 2000, 'roomClosed webhook');
  } finally {
    await server.stop();
    await hooks.close();
  }
});

test('a second signal stops at once', { timeout: 60000 }, async () => {
  const hooks = await webhookReceiver();
  const server = await startServer({ WEBHOOK_URL: hooks.url, DRAIN_TIMEOUT: '600' });
  try {
    const room = await createRoom(server);
    const a = await joinedPeer(server, room, 31, 'A');
    server.proc.kill('SIGINT');
    await eventually(() => /stop signal: draining/.test(server.stderr), 5000, 'drain logged');
    assert.equal((await api(server, 'POST', '/meetmedia/api/sessions')).status, 503);
    assert.ok(a.socket.connected);
    const at = Date.now();
    server.proc.kill('SIGTERM');
    const exit = await exitWithin(server, 5000, 'second signal');
    assert.ok(Date.now() - at < 5000);
    // 128 + SIGTERM: stopped by a signal, its rooms not closed.
    assert.deepEqual(exit, { code: 143, signal: null }, server.stderr.slice(-3000));
    assert.match(server.stderr, /second stop signal: stopping at once/);
    await sleep(300);
    assert.equal(roomClosed(hooks, room), undefined, 'no roomClosed after a stop at once');
    assert.ok(!fs.existsSync(server.consolePath), 'console socket removed');
  } finally {
    await server.stop();
    await hooks.close();
  }
});

test('SIGINT with no room: exit 0 at once', { timeout: 30000 }, async () => {
  const server = await startServer({ DRAIN_TIMEOUT: '600' });
  try {
    server.proc.kill('SIGINT');
    const exit = await exitWithin(server, 5000, 'nothing to drain');
    assert.deepEqual(exit, { code: 0, signal: null }, server.stderr.slice(-3000));
  } finally {
    await server.stop();
  }
});
