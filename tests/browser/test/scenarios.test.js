// Contract section 6 behaviours with real Chromium, each in its own test: forced TCP, a
// screen share, pausing and resuming a webcam, a participant leaving, restartIce.
'use strict';

const test = require('node:test');
const assert = require('node:assert/strict');
const { room, stats, waitStats, decodingAll } = require('./harness.js');

const sleep = (ms) => new Promise((r) => setTimeout(r, ms));
const videoFrom = (s, peerId, source = 'webcam') => s.find((c) => c.kind === 'video' && c.peerId === peerId && c.source === source);

test('media over ICE-TCP when forced', { timeout: 90000 }, async () => {
  const r = await room(2, { forceTcp: true });
  try {
    for (const page of r.pages) await decodingAll(page, { videos: 1, audios: 1 });
    for (const page of r.pages) {
      const t = await page.evaluate(() => window.kolab.transportStats());
      assert.equal(t.send.protocol, 'tcp', JSON.stringify(t));
      assert.equal(t.recv.protocol, 'tcp', JSON.stringify(t));
    }
  } finally {
    await r.close();
  }
});

test('a screen share is seen by the others', { timeout: 90000 }, async () => {
  const r = await room(2);
  try {
    const [a, b] = r.pages;
    await decodingAll(b, { videos: 1, audios: 1 });
    await a.evaluate(() => window.kolab.shareScreen());
    const s = await waitStats(b, (s) => (videoFrom(s, a.peer.id, 'screen')?.framesDecoded ?? 0) > 0, 'screen share decoded');
    assert.ok(videoFrom(s, a.peer.id, 'screen').frameWidth > 0);
  } finally {
    await r.close();
  }
});

test('pausing a webcam stops its frames at the others, resuming restarts them', { timeout: 90000 }, async () => {
  const r = await room(2);
  try {
    const [a, b] = r.pages;
    await decodingAll(b, { videos: 1, audios: 1 });
    await a.evaluate(() => window.kolab.setPaused('webcam', true));
    await waitStats(b, (s) => videoFrom(s, a.peer.id)?.paused === true, 'consumerPaused reached the receiver');
    await sleep(1000);
    const before = videoFrom(await stats(b), a.peer.id).framesDecoded;
    await sleep(2000);
    const during = videoFrom(await stats(b), a.peer.id).framesDecoded;
    assert.equal(during, before, 'no frames while paused');
    await a.evaluate(() => window.kolab.setPaused('webcam', false));
    await waitStats(b, (s) => videoFrom(s, a.peer.id)?.framesDecoded > during + 5, 'frames again after resume');
  } finally {
    await r.close();
  }
});

test('a participant leaving closes its consumers at the others', { timeout: 90000 }, async () => {
  const r = await room(3);
  try {
    const [a, b, c] = r.pages;
    await decodingAll(b, { videos: 2, audios: 2 });
    await a.evaluate(() => window.kolab.leave());
    for (const page of [b, c]) {
      await waitStats(page, (s) => s.every((x) => x.peerId !== a.peer.id) && s.length === 2, 'consumers of the leaver closed');
      const closed = await page.evaluate(() => window.kolab.state.closedConsumers.length);
      assert.equal(closed, 2);
    }
    await decodingAll(b, { videos: 1, audios: 1 });
  } finally {
    await r.close();
  }
});

test('restartIce keeps media flowing', { timeout: 90000 }, async () => {
  const r = await room(2);
  try {
    const [a, b] = r.pages;
    await decodingAll(b, { videos: 1, audios: 1 });
    await a.evaluate(() => window.kolab.restartIce());
    await b.evaluate(() => window.kolab.restartIce());
    await sleep(2000);
    await decodingAll(b, { videos: 1, audios: 1 });
    await decodingAll(a, { videos: 1, audios: 1 });
  } finally {
    await r.close();
  }
});
