// Issue 18 §4, "the process stopped for 5 s (SIGSTOP, SIGCONT)": what a host does to a
// process under memory pressure, a VM migration or a debugger. Two Chromium participants
// (A publishes webcam and microphone, B receives); the server is stopped for 5 s and
// continued. Meanwhile A's packets wait in the media socket's receive buffer and every
// timer of the server falls due. Afterwards: B decodes again within a few seconds over the
// same transports (no ICE restart, consent still fresh); the server does not answer the
// stop with a burst of key frame requests to A or of retransmissions to B; and what
// waited in the socket is not replayed to B as seconds of stale media in one burst.
'use strict';

const test = require('node:test');
const assert = require('node:assert/strict');
const { room, stats, decodingAll } = require('./harness.js');

const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

/** A's video producer's outbound figures (what B's and the server's feedback asked of it). */
async function publisherVideo(page) {
  const { outbound } = await page.evaluate(() => window.kolab.latencyFigures());
  const video = outbound.filter((o) => o.kind === 'video');
  const sum = (k) => video.reduce((n, o) => n + (o[k] ?? 0), 0);
  return { pli: sum('pliCount'), fir: sum('firCount'), nack: sum('nackCount'), retransmitted: sum('retransmittedPacketsSent') };
}

/** B's figures for A's video and audio. */
async function receiver(page) {
  const s = await stats(page);
  const v = s.find((c) => c.kind === 'video');
  const a = s.find((c) => c.kind === 'audio');
  return { at: Date.now(), frames: v.framesDecoded, videoPackets: v.packetsReceived, nack: v.nackCount, pli: v.pliCount, freezes: v.freezeCount, audioPackets: a.packetsReceived };
}

test('the server stopped for 5 s and continued: media resumes on the same transports without a burst', { timeout: 180000 }, async () => {
  const r = await room(2, (i) => ({ webcam: i === 0, mic: true }));
  try {
    const [a, b] = r.pages;
    await decodingAll(b, { videos: 1, audios: 1 });
    await sleep(5000);
    // A second of normal traffic, for scale.
    const n0 = await receiver(b);
    await sleep(1000);
    const n1 = await receiver(b);
    const perSecond = ((n1.videoPackets - n0.videoPackets) * 1000) / (n1.at - n0.at);
    const pub0 = await publisherVideo(a);
    const path = async () =>
      b.evaluate(async () => {
        const t = await window.kolab.transportStats();
        return { state: window.kolab.state.recvTransport.connectionState, protocol: t.recv?.protocol, consumers: [...window.kolab.state.consumers.keys()].sort() };
      });
    const path0 = await path();

    r.server.proc.kill('SIGSTOP');
    await sleep(5000);
    const stopped = await receiver(b);
    r.server.proc.kill('SIGCONT');
    const resumedAt = Date.now();

    // Sample B every 250 ms for 10 s.
    const samples = [];
    while (Date.now() - resumedAt < 10000) {
      samples.push(await receiver(b));
      await sleep(250);
    }
    const resumed = samples.find((s) => s.frames > stopped.frames + 5);
    const burst = Math.max(
      ...samples.slice(1).map((s, k) => ((s.videoPackets - samples[k].videoPackets) * 1000) / Math.max(1, s.at - samples[k].at)),
    );
    const firstSecond = samples.filter((s) => s.at - resumedAt <= 1000).at(-1);
    const pub1 = await publisherVideo(a);
    const last = samples.at(-1);
    const path1 = await path();
    const line =
      `stopped 5 s: B decoded again ${resumed ? resumed.at - resumedAt : 'never'} ms after SIGCONT; video packets ${Math.round(perSecond)}/s before, ` +
      `${firstSecond ? firstSecond.videoPackets - stopped.videoPackets : '?'} in the first second after, highest rate over 250 ms ${Math.round(burst)}/s; ` +
      `A asked for ${pub1.pli - pub0.pli} PLI, ${pub1.fir - pub0.fir} FIR, ${pub1.nack - pub0.nack} NACKs (${pub1.retransmitted - pub0.retransmitted} retransmitted); ` +
      `B sent ${last.nack - stopped.nack} NACKs, ${last.pli - stopped.pli} PLIs, ${last.freezes - stopped.freezes} freezes; ` +
      `B's receiving transport ${JSON.stringify(path0)} -> ${JSON.stringify(path1)}`;
    console.log(line);
    assert.ok(resumed && resumed.at - resumedAt < 3000, `B decodes again within 3 s: ${line}`);
    // B needs a key frame after the skipped seconds: one request, and a retry at most, per
    // encoding A sends (two).
    assert.ok(pub1.pli + pub1.fir - pub0.pli - pub0.fir <= 4, `key frame requests to A: ${line}`);
    // Replayed, the 5 s waiting in the socket reached B at 14 times the stream's packet
    // rate (578 packets/s over 250 ms against 40/s, 2026-12-07).
    assert.ok(burst < Math.max(4 * perSecond, 200), `no burst of stale media towards B: ${line}`);
    assert.deepEqual(path1, path0, 'B keeps its transport (connected) and its consumers');
  } finally {
    // A failure while it was stopped must not leave it stopped (its stop would hang).
    r.server.proc.kill('SIGCONT');
    await r.close();
  }
});
