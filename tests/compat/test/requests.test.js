// Client requests of contract section 5: join, broadcasts, media requests (plain RTP
// transports answered and validated), bad data in every request, unknown methods, flooding.
'use strict';

const { test, before, after } = require('node:test');
const assert = require('node:assert/strict');
const {
  connectSocket,
  createPeer,
  createRoom,
  joinedPeer,
  request,
  sleep,
  startServer,
  waitNotification,
} = require('./helpers');

const T = '00000000-0000-4000-8000-000000000001';
let server;

before(async () => {
  server = await startServer();
});
after(async () => server.stop());

test('join answers the others and announces the newcomer', async () => {
  const room = await createRoom(server);
  const a = await joinedPeer(server, room, 3, 'Ann');
  assert.deepEqual(a.joinResponse.peers, []);
  assert.equal(a.joinResponse.id, a.peer.id);
  assert.equal(a.joinResponse.nickname, 'Ann');
  assert.equal(a.joinResponse.role, 3);
  assert.equal(a.joinResponse.raisedHand, false);
  assert.equal(a.joinResponse.language, null);
  const b = await joinedPeer(server, room, 1, undefined);
  assert.equal(b.joinResponse.nickname, false, 'nickname starts as false');
  assert.equal(b.joinResponse.peers.length, 1);
  assert.deepEqual(b.joinResponse.peers[0], { id: a.peer.id, language: null, nickname: 'Ann', role: 3, raisedHand: false });
  const np = await waitNotification(a.socket, 'newPeer');
  assert.equal(np.data.id, b.peer.id);
  const again = await request(b.socket, 'join', {});
  assert.equal(again.err, 409);
  assert.match(again.res, /already joined/);
  a.socket.close();
  b.socket.close();
});

test('chat, nickname and raised hand reach every joined peer, the sender included', async () => {
  const room = await createRoom(server);
  const a = await joinedPeer(server, room, 3, 'Ann');
  const b = await joinedPeer(server, room, 3, 'Bob');
  const lurker = await createPeer(server, room, 1);
  const ls = await connectSocket(server, lurker.query);
  await waitNotification(ls, 'roomReady');
  let r = await request(a.socket, 'chatMessage', { message: 'hello' });
  assert.equal(r.err, undefined);
  for (const s of [a.socket, b.socket]) {
    const n = await waitNotification(s, 'chatMessage');
    assert.deepEqual(n.data, { peerId: a.peer.id, nickname: 'Ann', message: 'hello' });
  }
  r = await request(b.socket, 'changeNickname', { nickname: 'Bobby' });
  assert.equal(r.err, undefined);
  for (const s of [a.socket, b.socket]) {
    const n = await waitNotification(s, 'changeNickname');
    assert.deepEqual(n.data, { peerId: b.peer.id, nickname: 'Bobby' });
  }
  r = await request(b.socket, 'raisedHand', { raisedHand: true });
  assert.equal(r.err, undefined);
  const n = await waitNotification(a.socket, 'changeRaisedHand');
  assert.deepEqual(n.data, { peerId: b.peer.id, raisedHand: true });
  await sleep(50);
  assert.equal(ls.notifications.filter((x) => x.method === 'chatMessage').length, 0, 'not-joined peers get no broadcasts');
  for (const s of [a.socket, b.socket, ls]) s.close();
});

test('requests before join: only transport ones are allowed', async () => {
  const room = await createRoom(server);
  const p = await createPeer(server, room, 3);
  const s = await connectSocket(server, p.query);
  await waitNotification(s, 'roomReady');
  const chat = await request(s, 'chatMessage', { message: 'x' });
  assert.equal(chat.err, 409);
  assert.match(chat.res, /not joined/);
  const t = await request(s, 'createWebRtcTransport', { forceTcp: false, producing: true, consuming: false });
  assert.equal(t.err, null, JSON.stringify(t.res));
  assert.ok(t.res.id && t.res.iceParameters.usernameFragment && t.res.dtlsParameters.fingerprints.length);
  assert.equal((await request(s, 'ping')).err, undefined);
  s.close();
});

test('media requests on things that do not exist fail cleanly; plain transports answer and validate connect', async () => {
  const room = await createRoom(server);
  const a = await joinedPeer(server, room, 3, 'Ann');
  const rtp = {
    codecs: [{ mimeType: 'audio/opus', payloadType: 111, clockRate: 48000, channels: 2, parameters: {}, rtcpFeedback: [] }],
    headerExtensions: [],
    encodings: [{ ssrc: 1234 }],
    rtcp: { cname: 'x' },
  };
  const fp = { role: 'client', fingerprints: [{ algorithm: 'sha-256', value: Array(32).fill('AB').join(':') }] };
  const notFound = [
    ['connectWebRtcTransport', { transportId: T, dtlsParameters: fp }, /transport .* not found/],
    ['restartIce', { transportId: T }, /transport .* not found/],
    ['produce', { transportId: T, kind: 'audio', rtpParameters: rtp, appData: { source: 'mic' } }, /transport .* not found/],
    ['closeProducer', { producerId: T }, /not found/],
    ['pauseProducer', { producerId: T }, /not found/],
    ['resumeProducer', { producerId: T }, /not found/],
    ['pauseConsumer', { consumerId: T }, /not found/],
    ['resumeConsumer', { consumerId: T }, /not found/],
  ];
  for (const [method, data, why] of notFound) {
    const r = await request(a.socket, method, data);
    assert.equal(r.err, 404, `${method}: ${JSON.stringify(r)}`);
    assert.match(r.res, why, method);
  }
  // Plain RTP transports (issue 10): an unknown one is not found; a real one answers
  // {id, ip, port, rtcpPort} and refuses a second connect and bad addresses.
  const unknownPlain = await request(a.socket, 'connectPlainTransport', { transportId: T, ip: '127.0.0.1', port: 5000, rtcpPort: 5001 });
  assert.equal(unknownPlain.err, 404, JSON.stringify(unknownPlain));
  const plain = await request(a.socket, 'createPlainTransport', { producing: true, consuming: false });
  assert.equal(plain.err, null, JSON.stringify(plain));
  assert.equal(plain.res.ip, '127.0.0.1');
  assert.ok(plain.res.port >= 40000 && plain.res.port <= 49999 && plain.res.rtcpPort === plain.res.port + 1, JSON.stringify(plain.res));
  const badPort = await request(a.socket, 'connectPlainTransport', { transportId: plain.res.id, ip: '127.0.0.1', port: 0, rtcpPort: 5001 });
  assert.ok(badPort.err != null, JSON.stringify(badPort));
  const connected = await request(a.socket, 'connectPlainTransport', { transportId: plain.res.id, ip: '127.0.0.1', port: 5000, rtcpPort: 5001 });
  assert.ok(connected.err == null, JSON.stringify(connected));
  const again = await request(a.socket, 'connectPlainTransport', { transportId: plain.res.id, ip: '127.0.0.1', port: 5000, rtcpPort: 5001 });
  assert.ok(again.err != null, JSON.stringify(again));
  assert.match(String(again.res), /already connected/);
  // A real transport, then parameters the router cannot take.
  const t = await request(a.socket, 'createWebRtcTransport', { forceTcp: true, producing: true, consuming: false });
  assert.equal(t.err, null);
  assert.deepEqual(t.res.iceCandidates.map((c) => [c.protocol, c.tcpType, c.address]), [['tcp', 'passive', '127.0.0.1']]);
  assert.equal(t.res.iceParameters.iceLite, true);
  assert.equal(t.res.dtlsParameters.role, 'auto');
  const av1 = { ...rtp, codecs: [{ mimeType: 'video/AV1', payloadType: 45, clockRate: 90000, parameters: {}, rtcpFeedback: [] }] };
  const p = await request(a.socket, 'produce', { transportId: t.res.id, kind: 'video', rtpParameters: av1, appData: { source: 'webcam' } });
  assert.equal(p.err, 400);
  assert.match(p.res, /unsupported codec/);
  const ok = await request(a.socket, 'produce', { transportId: t.res.id, kind: 'audio', rtpParameters: rtp, appData: { source: 'mic' } });
  assert.equal(ok.err, null, JSON.stringify(ok.res));
  assert.ok(ok.res.id);
  a.socket.close();
});

test('wrong types in request data get 400 naming the field', async () => {
  const room = await createRoom(server);
  const a = await joinedPeer(server, room, 31, 'Ann');
  const cases = [
    ['join', 'x', /data/],
    ['createWebRtcTransport', { forceTcp: 'yes' }, /forceTcp/],
    ['connectWebRtcTransport', { transportId: 5, dtlsParameters: {} }, /transportId/],
    ['connectWebRtcTransport', { transportId: T, dtlsParameters: { fingerprints: [] } }, /dtlsParameters/],
    ['restartIce', {}, /transportId/],
    ['connectPlainTransport', { transportId: T, ip: 'nope', port: 1, rtcpPort: 2 }, /ip/],
    ['connectPlainTransport', { transportId: T, ip: '1.2.3.4', port: 70000, rtcpPort: 2 }, /port/],
    ['produce', { transportId: T, kind: 'smell', rtpParameters: { codecs: [] }, appData: { source: 'mic' } }, /kind/],
    ['produce', { transportId: T, kind: 'audio', rtpParameters: { codecs: [] }, appData: { source: 'tv' } }, /source/],
    ['produce', { transportId: T, kind: 'audio', rtpParameters: { codecs: 'opus' }, appData: { source: 'mic' } }, /rtpParameters/],
    ['produce', { transportId: T, kind: 'audio', rtpParameters: { codecs: [] } }, /appData/],
    ['closeProducer', { producerId: [] }, /producerId/],
    ['pauseConsumer', null, /data/],
    ['changeNickname', { nickname: 42 }, /nickname/],
    ['changeNickname', { nickname: 'x'.repeat(300) }, /nickname/],
    ['raisedHand', { raisedHand: 'up' }, /raisedHand/],
    ['chatMessage', { message: { text: 'hi' } }, /message/],
    ['chatMessage', { message: 'x'.repeat(5000) }, /message/],
    ['moderator:addRole', { peerId: a.peer.id, role: 'admin' }, /role/],
    ['moderator:changeLanguage', { peerId: a.peer.id, language: 'EN' }, /language/],
    ['moderator:joinRequestAccept', { requestId: {} }, /requestId/],
    ['moderator:kickPeer', { peerId: 'someone' }, /peerId/],
  ];
  for (const [method, data, field] of cases) {
    const r = await request(a.socket, method, data);
    assert.equal(r.err, 400, `${method} ${JSON.stringify(data)} -> ${r.err} ${r.res}`);
    assert.match(r.res, field, method);
  }
  const unknown = await request(a.socket, 'fly', {});
  assert.equal(unknown.res, 'unknown request.method "fly"');
  // Still fine.
  assert.equal((await request(a.socket, 'ping')).err, undefined);
  a.socket.close();
});

test('produce needs the PUBLISHER role', async () => {
  const room = await createRoom(server);
  const a = await joinedPeer(server, room, 1, 'Sub');
  const r = await request(a.socket, 'produce', {
    transportId: T,
    kind: 'audio',
    rtpParameters: { codecs: [{ mimeType: 'audio/opus', payloadType: 111, clockRate: 48000 }], encodings: [{ ssrc: 1 }] },
    appData: { source: 'mic' },
  });
  assert.equal(r.err, 403);
  assert.match(r.res, /PUBLISHER/);
  a.socket.close();
});

test('a flooding socket gets 429s, others are unaffected, and it recovers', async () => {
  const room = await createRoom(server);
  const a = await joinedPeer(server, room, 3, 'Flood');
  const b = await joinedPeer(server, room, 3, 'Calm');
  const results = await Promise.all(Array.from({ length: 300 }, () => request(a.socket, 'ping')));
  const limited = results.filter((r) => r.err === 429);
  assert.ok(limited.length >= 150, `only ${limited.length} limited`);
  assert.match(limited[0].res, /too many requests/);
  assert.equal((await request(b.socket, 'ping')).err, undefined);
  await sleep(1100);
  assert.equal((await request(a.socket, 'ping')).err, undefined);
  assert.equal(a.socket.connected, true);
  a.socket.close();
  b.socket.close();
});
