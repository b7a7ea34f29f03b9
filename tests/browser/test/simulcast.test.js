// A simulcast layer switch at a receiver: the sender limits its webcam to the low
// encoding, then lifts the limit; the receiver's consumer follows (consumerLayersChanged),
// the decoded resolution changes, and frames never stop; the sender's bandwidth estimate,
// fed by the server's transport-cc feedback, holds up.
'use strict';

const test = require('node:test');
const assert = require('node:assert/strict');
const { room, stats, waitStats, decodingAll, consoleLine } = require('./harness.js');

const video = (s, peerId) => s.find((c) => c.kind === 'video' && c.peerId === peerId);
const layers = (page) =>
  page.evaluate(() => window.kolab.state.notifications.filter((n) => n.method === 'consumerLayersChanged').map((n) => n.data.layers));

test('simulcast layers switch at a receiver without a stall', { timeout: 120000 }, async () => {
  const r = await room(2);
  try {
    const [a, b] = r.pages;
    await decodingAll(b, { videos: 1, audios: 1 });
    // Wait for the top layer (640x480) to be the one decoded.
    await waitStats(b, (s) => video(s, a.peer.id)?.frameWidth === 640, 'the high layer decoded', 45000);
    assert.equal((await layers(b)).at(-1)?.spatialLayer, 1);
    // Down to the low layer.
    await a.evaluate(() => window.kolab.setMaxSpatialLayer(0));
    const low = await waitStats(b, (s) => video(s, a.peer.id)?.frameWidth === 320, 'the low layer decoded', 20000);
    assert.equal((await layers(b)).at(-1)?.spatialLayer, 0);
    // Frames keep coming on the low layer.
    await new Promise((res) => setTimeout(res, 1500));
    const after = video(await stats(b), a.peer.id);
    assert.ok(after.framesDecoded > video(low, a.peer.id).framesDecoded, 'frames continue after the switch');
    // And back up.
    await a.evaluate(() => window.kolab.setMaxSpatialLayer(1));
    await waitStats(b, (s) => video(s, a.peer.id)?.frameWidth === 640, 'the high layer again', 20000);
    assert.equal((await layers(b)).at(-1)?.spatialLayer, 1);
    // The sender's bandwidth estimate is fed by the server's transport-cc feedback: it
    // stays high enough for both layers (without feedback Chromium sinks to ~100 kbps and
    // drops the 640x480 encoding).
    const bwe = (await a.evaluate(() => window.kolab.transportStats())).send.availableOutgoingBitrate;
    console.log(`sender availableOutgoingBitrate: ${bwe}`);
    assert.ok(bwe >= 600000, `sender bandwidth estimate ${bwe} bps`);
    // Issue 9: the server's own estimate of the receiver's link and the consumer's
    // layers, as the console shows them (the workers publish them once a second).
    await new Promise((res) => setTimeout(res, 1500));
    const json = await consoleLine(r.server, 'statsTransport');
    const transports = JSON.parse(json);
    const recv = transports.find((t) => t.peerId === b.peer.id);
    assert.ok(recv, `b's receiving transport in ${json}`);
    assert.ok(recv.estimateBps >= 300000, `server estimate of b's link: ${recv.estimateBps}`);
    const vc = recv.consumers.find((c) => c.kind === 'video');
    assert.equal(vc.currentLayer, 1, JSON.stringify(vc));
    assert.equal(vc.targetLayer, 1, JSON.stringify(vc));
    console.log(`server: estimate of the receiver's link ${recv.estimateBps} bps, acked ${recv.ackedBps}; video consumer ${JSON.stringify(vc)}`);
    const text = await consoleLine(r.server, 'dumpTransport');
    assert.match(text, new RegExp(`transport ${recv.transportId} peer ${b.peer.id} .*estimate \\d+ kbit/s`));
  } finally {
    await r.close();
  }
});
