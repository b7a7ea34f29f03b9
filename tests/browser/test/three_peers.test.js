// Contract section 6 with real Chromium: three participants in one room, each sending a
// simulcast webcam (two encodings) and a microphone through kolabmeet-server over UDP;
// everyone decodes both others' video and audio; and Chromium reads the server's RTCP:
// round-trip times from its receiver reports, remote-outbound stats from its sender
// reports.
'use strict';

const test = require('node:test');
const assert = require('node:assert/strict');
const { room, decodingAll } = require('./harness.js');

/**
 * Waits until a page has an RTT measurement for each of its producers' streams (webcam
 * layers and mic) and sender-report stats for its four consumers.
 */
async function waitRtcp(page, ms = 20000) {
  const end = Date.now() + ms;
  let last;
  while (Date.now() < end) {
    last = await page.evaluate(() => window.kolab.rtcpStats());
    const sources = new Set(last.producers.filter((p) => p.rttMeasurements > 0).map((p) => p.source));
    const reported = last.consumers.filter((c) => c.reportsSent > 0);
    if (sources.has('webcam') && sources.has('mic') && reported.length >= 4) return last;
    await new Promise((res) => setTimeout(res, 500));
  }
  throw new Error(`RTCP stats not complete in ${ms} ms: ${JSON.stringify(last)}`);
}

test('three participants see and hear each other over UDP', { timeout: 120000 }, async () => {
  const r = await room(3);
  try {
    for (const page of r.pages) {
      const s = await decodingAll(page, { videos: 2, audios: 2 });
      const others = new Set(s.map((c) => c.peerId));
      assert.equal(others.size, 2, 'streams from both other participants');
      assert.ok(!others.has(page.peer.id), 'not its own streams');
      for (const c of s.filter((x) => x.kind === 'video')) assert.ok(c.frameHeight > 0);
    }
    for (const page of r.pages) {
      const rtcp = await waitRtcp(page);
      for (const p of rtcp.producers) {
        assert.ok(p.roundTripTime >= 0 && p.roundTripTime < 0.5, `RTT from the server's RR: ${JSON.stringify(p)}`);
        assert.ok(p.packetsLost <= 5, `loopback loses nothing: ${JSON.stringify(p)}`);
      }
      for (const c of rtcp.consumers) {
        assert.ok(c.packetsSent > 0 && c.packetsSent <= c.packetsReceived + 200, `SR counts: ${JSON.stringify(c)}`);
      }
    }
    const t = await r.pages[0].evaluate(() => window.kolab.transportStats());
    assert.equal(t.send.protocol, 'udp');
    // Issue 8: the server's SRTP preference (AEAD first) wins over Chromium's order, in
    // whichever DTLS role each side ends up.
    for (const page of r.pages) {
      const ts = await page.evaluate(() => window.kolab.transportStats());
      for (const dir of ['send', 'recv']) {
        assert.equal(ts[dir].srtpCipher, 'SRTP_AEAD_AES_256_GCM', `${dir} transport: ${JSON.stringify(ts[dir])}`);
      }
    }
  } finally {
    await r.close();
  }
});
