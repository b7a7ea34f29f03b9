// Role rules of contract section 5 (moderator:addRole, removeRole, changeLanguage).
'use strict';

const { test, before, after } = require('node:test');
const assert = require('node:assert/strict');
const { createRoom, joinedPeer, request, startServer, waitNotification } = require('./helpers');

const SUB = 1;
const PUB = 2;
const MOD = 4;
const SCREEN = 8;
const OWNER = 16;
let server;

before(async () => {
  server = await startServer();
});
after(async () => server.stop());

test('moderator requests need MODERATOR', async () => {
  const room = await createRoom(server);
  const a = await joinedPeer(server, room, PUB, 'A');
  const b = await joinedPeer(server, room, SUB, 'B');
  for (const [method, data] of [
    ['moderator:addRole', { peerId: b.peer.id, role: PUB }],
    ['moderator:removeRole', { peerId: b.peer.id, role: SUB }],
    ['moderator:changeLanguage', { peerId: b.peer.id, language: 'de' }],
    ['moderator:kickPeer', { peerId: b.peer.id }],
    ['moderator:joinRequestDeny', { requestId: 'x' }],
  ]) {
    const r = await request(a.socket, method, data);
    assert.equal(r.err, 403, method);
    assert.match(r.res, /MODERATOR/, method);
  }
  a.socket.close();
  b.socket.close();
});

test('roles: known bits only, OWNER untouchable, MODERATOR kept by the OWNER', async () => {
  const room = await createRoom(server);
  const owner = await joinedPeer(server, room, OWNER | MOD | PUB, 'Owner');
  const b = await joinedPeer(server, room, SUB, 'B');
  let r = await request(owner.socket, 'moderator:addRole', { peerId: b.peer.id, role: 32 });
  assert.equal(r.err, 400);
  r = await request(owner.socket, 'moderator:addRole', { peerId: b.peer.id, role: OWNER });
  assert.equal(r.err, 403);
  assert.match(r.res, /OWNER/);
  r = await request(owner.socket, 'moderator:removeRole', { peerId: owner.peer.id, role: OWNER });
  assert.equal(r.err, 403);
  r = await request(owner.socket, 'moderator:removeRole', { peerId: owner.peer.id, role: MOD });
  assert.equal(r.err, 403);
  assert.match(r.res, /MODERATOR cannot be taken from the OWNER/);
  r = await request(owner.socket, 'moderator:addRole', { peerId: '00000000-0000-4000-8000-000000000000', role: PUB });
  assert.equal(r.err, 404);
  // Adding SCREEN works and everyone hears of it.
  r = await request(owner.socket, 'moderator:addRole', { peerId: b.peer.id, role: SCREEN });
  assert.equal(r.err, undefined);
  for (const s of [owner.socket, b.socket]) {
    const n = await waitNotification(s, 'changeRole', (d) => d.role === (SUB | SCREEN));
    assert.equal(n.data.peerId, b.peer.id);
  }
  owner.socket.close();
  b.socket.close();
});

test('giving PUBLISHER lowers a raised hand; taking it clears the language', async () => {
  const room = await createRoom(server);
  const mod = await joinedPeer(server, room, MOD, 'Mod');
  const b = await joinedPeer(server, room, SUB, 'B');
  assert.equal((await request(b.socket, 'raisedHand', { raisedHand: true })).err, undefined);
  assert.equal((await request(mod.socket, 'moderator:addRole', { peerId: b.peer.id, role: PUB })).err, undefined);
  await waitNotification(mod.socket, 'changeRole', (d) => d.peerId === b.peer.id && d.role === (SUB | PUB));
  let later = await joinedPeer(server, room, SUB, 'Later');
  let info = later.joinResponse.peers.find((p) => p.id === b.peer.id);
  assert.equal(info.raisedHand, false);
  assert.equal(info.role, SUB | PUB);
  // Language, then PUBLISHER taken away.
  let r = await request(mod.socket, 'moderator:changeLanguage', { peerId: b.peer.id, language: 'fr' });
  assert.equal(r.err, undefined);
  const lang = await waitNotification(b.socket, 'changeLanguage');
  assert.deepEqual(lang.data, { peerId: b.peer.id, language: 'fr' });
  r = await request(mod.socket, 'moderator:removeRole', { peerId: b.peer.id, role: PUB });
  assert.equal(r.err, undefined);
  await waitNotification(b.socket, 'changeRole', (d) => d.role === SUB);
  later.socket.close();
  later = await joinedPeer(server, room, SUB, 'Later2');
  info = later.joinResponse.peers.find((p) => p.id === b.peer.id);
  assert.equal(info.language, null);
  assert.equal(info.role, SUB);
  // null language is allowed, anything but two lowercase letters is not.
  assert.equal((await request(mod.socket, 'moderator:changeLanguage', { peerId: b.peer.id, language: null })).err, undefined);
  for (const language of ['EN', 'eng', 'e', 5, 'd3']) {
    assert.equal((await request(mod.socket, 'moderator:changeLanguage', { peerId: b.peer.id, language })).err, 400, String(language));
  }
  for (const s of [mod.socket, b.socket, later.socket]) s.close();
});
