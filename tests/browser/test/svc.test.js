// Issue 9, "SVC consumers": a VP9 publisher sending one k-SVC encoding (L3T3_KEY: 320x180,
// 640x360 and 1280x720 in one stream) is consumed as `type: 'svc'`; the receiver decodes
// the top spatial layer and is told so (consumerLayersChanged); when the publisher's
// encoder drops its upper spatial layers (its bitrate capped, as a weak uplink does) the
// receiver keeps decoding the layers that still arrive, and climbs back when they return.
'use strict';

const test = require('node:test');
const assert = require('node:assert/strict');
const { room, stats, waitStats, decodingAll, consoleLine } = require('./harness.js');

const video = (s, peerId) => s.find((c) => c.kind === 'video' && c.peerId === peerId);
const layers = (page) =>
  page.evaluate(() => window.kolab.state.notifications.filter((n) => n.method === 'consumerLayersChanged').map((n) => n.data.layers));
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

/** Samples the receiver's video from `peerId` every 500 ms for `ms`: widths, longest stall. */
async function watch(page, peerId, ms) {
  const samples = [];
  const end = Date.now() + ms;
  while (Date.now() < end) {
    samples.push({ at: Date.now(), v: video(await stats(page), peerId) });
    await sleep(500);
  }
  let stall = 0;
  let since = samples[0].at;
  for (let k = 1; k < samples.length; k++) {
    if (samples[k].v.framesDecoded > samples[k - 1].v.framesDecoded) since = samples[k].at;
    else stall = Math.max(stall, samples[k].at - since);
  }
  return { widths: [...new Set(samples.map((s) => s.v.frameWidth))], stall, decoded: samples.at(-1).v.framesDecoded - samples[0].v.framesDecoded };
}

test('a VP9 k-SVC producer is consumed as svc and its layers follow what arrives', { timeout: 150000 }, async () => {
  const r = await room(2, { svc: 'L3T3_KEY', width: 1280, height: 720 });
  try {
    const [a, b] = r.pages;
    await decodingAll(b, { videos: 1, audios: 1 });
    const type = await b.evaluate(() => [...window.kolab.state.consumers.values()].find((x) => x.kind === 'video')?.type);
    assert.equal(type, 'svc');
    await waitStats(b, (s) => video(s, a.peer.id)?.frameWidth === 1280, 'the top spatial layer decoded', 45000);
    assert.equal((await layers(b)).at(-1)?.spatialLayer, 2);
    // The server's view agrees (while B's estimate still climbs from its start value the
    // consumer may step down and up once: wait for it to settle on the top layer).
    let json;
    let vc;
    for (let t0 = Date.now(); Date.now() - t0 < 20000; await sleep(500)) {
      json = await consoleLine(r.server, 'statsTransport');
      vc = JSON.parse(json).find((t) => t.peerId === b.peer.id)?.consumers.find((c) => c.kind === 'video');
      // Settled: forwarding the top layer and allocated it (a step down may be pending
      // while the estimate climbs: the allocation moves first, the layer at the next
      // key picture).
      if (vc?.currentLayer === 2 && vc?.allocation === 'upTo:2/2') break;
    }
    assert.equal(vc?.currentLayer, 2, json);
    assert.equal(vc?.allocation, 'upTo:2/2', json);

    // A's encoder capped at 250 kbit/s: it stops sending its upper spatial layers; B
    // keeps decoding, narrower, with no stall over a second.
    await a.evaluate(() => window.kolab.setVideoMaxBitrate(250000));
    const low = await watch(b, a.peer.id, 12000);
    console.log(`publisher at 250 kbit/s: B widths ${JSON.stringify(low.widths)}, ${low.decoded} frames in 12 s, longest stall ${low.stall} ms`);
    assert.ok(low.widths.at(-1) < 1280, `B decodes ${JSON.stringify(low.widths)} wide`);
    assert.ok(low.stall <= 1000, `B stalled ${low.stall} ms`);
    assert.ok(low.decoded > 80, `B decoded ${low.decoded} frames`);

    // Lifted: the top spatial layer comes back.
    await a.evaluate(() => window.kolab.setVideoMaxBitrate(1200000));
    await waitStats(b, (s) => video(s, a.peer.id)?.frameWidth === 1280, 'the top spatial layer again', 30000);
    const after = await watch(b, a.peer.id, 3000);
    assert.ok(after.decoded > 10, `B decoded ${after.decoded} frames after the climb`);
  } finally {
    await r.close();
  }
});
