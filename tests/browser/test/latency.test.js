// Issue 8, latency as receivers feel it: three participants through kolabmeet-server, one
// 640x480 VP8 encoding and Opus each; every receiver's jitter-buffer figures are printed
// (`node latency.js` compares them with a direct mesh and Janus, over repeated runs).
// The bounds are loose on purpose: on a loaded machine the audio jitter buffer, and the
// video's through lip sync, grow to tens of ms and more; what must not happen is video
// held back by a broken NTP/RTP mapping (seconds) or frames stopping.
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
});
