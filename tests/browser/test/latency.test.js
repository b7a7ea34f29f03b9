// Issue 8, latency as receivers feel it: three participants through kolabmeet-server, one
// 640x480 VP8 encoding and Opus each; every receiver's jitter-buffer figures are printed
// (`node latency.js` compares them with a direct mesh and Janus, over repeated runs).
// The bounds are loose on purpose: on a loaded machine the audio jitter buffer, and the
// video's through lip sync, grow to tens of ms and more; what must not happen is video
// held back by a broken NTP/RTP mapping (seconds) or frames stopping.
// Issue 15: the server's CPU per packet the browsers receive, and with the synthetic
// marker tracks the audio/video offset as played, for every (receiver, sender) pair.
'use strict';

const test = require('node:test');
const assert = require('node:assert/strict');
const { measure } = require('./latency.js');

test('receivers play three participants with a bounded jitter-buffer delay', { timeout: 180000 }, async () => {
  const r = await measure('kolabmeet', { audio: true, warmup: 5, window: 10 });
  const { video, audio, syncGapMs } = r.summary;
  console.log(
    `video: jitter-buffer delay ${video.jbDelayMs.toFixed(1)} ms (target ${video.jbTargetMs.toFixed(1)}, ` +
      `minimum ${video.jbMinimumMs?.toFixed(1)}), jitter ${video.jitterMs.toFixed(1)} ms, ${video.fps.toFixed(1)} fps, ` +
      `${video.framesDropped} dropped; audio: ${audio.jbDelayMs.toFixed(1)} ms (target ${audio.jbTargetMs.toFixed(1)}); ` +
      `video minus audio ${syncGapMs?.toFixed(1)} ms`,
  );
  const videos = r.streams.filter((s) => s.kind === 'video');
  const audios = r.streams.filter((s) => s.kind === 'audio');
  assert.equal(videos.length, 6, 'each receiver gets both others\' video');
  assert.equal(audios.length, 6, 'and their audio');
  for (const s of videos) {
    assert.ok(s.fps >= 5, `frames keep coming: ${JSON.stringify(s)}`);
    assert.ok(s.jbDelayMs < 500, `video jitter-buffer delay: ${JSON.stringify(s)}`);
  }
  for (const s of audios) assert.ok(s.jbDelayMs < 500, `audio jitter-buffer delay: ${JSON.stringify(s)}`);
  const { cpu } = r.summary;
  console.log(`server: ${cpu.usPerPacket?.toFixed(1)} us CPU per packet received (${cpu.packets} packets, ${cpu.cpuMs} ms), RSS ${cpu.rssMiB.toFixed(1)} MiB`);
  assert.ok(cpu.packets > 1000, `packets received in the window: ${JSON.stringify(cpu)}`);
  assert.ok(Number.isFinite(cpu.usPerPacket) && cpu.usPerPacket > 0, `CPU per packet: ${JSON.stringify(cpu)}`);
  assert.ok(cpu.rssMiB > 1, `server RSS: ${JSON.stringify(cpu)}`);
});

// Through a direct mesh the offset is some -110..-60 ms on the 2-core machine (the video
// plays first; `node latency.js --marker` gives both); a server must not move it much
// further, nor lose a pair. Measured after 15 s: with 5 s, the pair of the first two
// participants (both directions) played its video after its audio in five of six runs
// (up to +155 ms; over +100 ms in two), on this code and on the code CI had passed (the third participant's join,
// with its page load on two cores, had just delayed their video and Chromium's sync had
// not settled; the other pairs -50..-90 ms); one run failed the 150 ms bound. With 15 s,
// that pair at -54..+41 ms in four runs, every test passed (2026-12-07).
test('receivers play each sender\'s audio and video markers within 150 ms of each other', { timeout: 180000 }, async () => {
  const r = await measure('kolabmeet', { audio: true, marker: true, warmup: 15, window: 10 });
  const av = r.summary.avOffset;
  console.log(
    `audio/video offset as played (video minus audio): median ${av.medianMs?.toFixed(1)} ms [${av.minMs?.toFixed(1)}..${av.maxMs?.toFixed(1)}], ` +
      `interquartile ${av.iqrMs?.toFixed(1)} ms; per receiver<-sender ${av.pairs.map((p) => `${p.receiver}<-${p.sender} ${p.medianMs?.toFixed(1)}/${p.n}`).join(' ')}; ` +
      `played locally ${av.localMs?.toFixed(1)} ms; audio context ${JSON.stringify(av.context)}`,
  );
  assert.equal(av.pairs.length, 6, `every receiver watches both others: ${JSON.stringify(av.pairs)}`);
  for (const p of av.pairs) {
    assert.ok(p.sender >= 0 && p.sender !== p.receiver, `sender named: ${JSON.stringify(p)}`);
    assert.ok(p.n >= 5, `at least 5 of ~10 flashes paired with their tone: ${JSON.stringify(p)}`);
    assert.ok(Math.abs(p.medianMs) <= 150, `offset within 150 ms: ${JSON.stringify(p)}`);
  }
  assert.ok(r.summary.cpu.usPerPacket > 0, `CPU per packet: ${JSON.stringify(r.summary.cpu)}`);
});
