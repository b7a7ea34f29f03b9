#!/usr/bin/env node
// Prints receivers' jitter-buffer figures (issue 8, "latency as receivers feel it") for
// three Chromium participants sending one 640x480 VP8 encoding + Opus, through
// kolabmeet-server, over a direct Chromium mesh, and through Janus when installed; each
// with and without audio (without it there is no lip sync to wait for).
//
//   node latency.js [--runs 3] [--warmup 10] [--window 20] [--fps 15]
//                   [--only kolabmeet,kolabmeet-video,p2p,p2p-video,janus,janus-video]
//                   [--marker] [--audio-delay 100] [--json out.json]
//
// Issue 15's figures: `--marker` sends the synthetic marker tracks (page/marker.js)
// instead of the fake camera and microphone (column src: marker / fake; the jitter-buffer
// columns are then the synthetic tracks') and adds av-off, per (receiver, sender) the
// median of video minus audio as played (ms; negative: the video plays first), the
// median over the pairs, their range, and the median interquartile range; the mesh's
// figure is the baseline (the source's and the receiving browser's own bias).
// `--audio-delay MS` delays the publishers' audio marker (the detector's check: av-off
// moves by -MS); `--audio-delay 0,100,0` only participant 1's (within one run, the pairs
// <-1 move against the others). cpu us/pkt: the server's CPU time (process and descendants, from
// /proc) over the window per RTP packet the browsers received; rss MiB at its end.
//
// KOLABMEET_BIN picks the server binary (default: target/release/kolabmeet-server).
'use strict';

const fs = require('node:fs');
const { measure, janusAvailable } = require('./test/latency.js');

function args() {
  const a = { runs: 3, warmup: 10, window: 20, fps: 15, only: null, json: null, env: {}, marker: false, 'audio-delay': 0 };
  const v = process.argv.slice(2);
  for (let i = 0; i < v.length; i++) {
    const k = v[i].replace(/^--/, '');
    if (k === 'marker') a.marker = true;
    else if (k === 'env') {
      const [name, value] = v[++i].split('=');
      a.env[name] = value;
    } else if (k === 'audio-delay') {
      const d = v[++i].split(',').map(Number);
      a[k] = d.length > 1 ? d : d[0];
    } else if (k in a) a[k] = ['only', 'json'].includes(k) ? v[++i] : Number(v[++i]);
    else throw new Error(`unknown option ${v[i]}`);
  }
  return a;
}

const f = (x, d = 1) => (x === null || x === undefined || !Number.isFinite(x) ? '-' : x.toFixed(d));

async function main() {
  const o = args();
  let scenarios = ['kolabmeet', 'kolabmeet-video', 'p2p', 'p2p-video'];
  if (janusAvailable()) scenarios.push('janus', 'janus-video');
  if (o.only) scenarios = o.only.split(',');
  const results = [];
  const marker = o.marker || o['audio-delay'] ? { audioDelayMs: o['audio-delay'] } : false;
  console.log(
    'scenario          run src    load(1m)  video: jb  target  min   jitter fps   drop decode ifdStd | audio: jb  target  min   jitter | v-a  | pacer | av-off [min..max]     iqr | cpu us/pkt  %cpu  rss MiB',
  );
  for (let run = 1; run <= o.runs; run++) {
    for (const sc of scenarios) {
      const [kind, only] = sc.split('-'); // kolabmeet-video: no audio; kolabmeet-simulcast: the Kolab client's two encodings
      const load = fs.readFileSync('/proc/loadavg', 'utf8').split(' ')[0];
      let r;
      try {
        r = await measure(kind, {
          audio: only !== 'video',
          simulcast: only === 'simulcast',
          fps: o.fps,
          warmup: o.warmup,
          window: o.window,
          serverEnv: o.env,
          marker,
        });
      } catch (e) {
        console.log(`${sc.padEnd(17)} ${run}   failed: ${e.message}`);
        continue;
      }
      const loadAfter = fs.readFileSync('/proc/loadavg', 'utf8').split(' ')[0];
      const v = r.summary.video;
      const a = r.summary.audio ?? {};
      const av = r.summary.avOffset;
      const cpu = r.summary.cpu;
      const avCols = av
        ? `${f(av.medianMs).padStart(6)} [${f(av.minMs)}..${f(av.maxMs)}]`.padEnd(22) + ` ${f(av.iqrMs).padStart(5)}`
        : '-'.padStart(6).padEnd(22) + '     -';
      const cpuCols = cpu ? `${f(cpu.usPerPacket).padStart(10)} ${f(cpu.cpuPct).padStart(5)} ${f(cpu.rssMiB).padStart(8)}` : `${'-'.padStart(10)} ${'-'.padStart(5)} ${'-'.padStart(8)}`;
      const pairs = av?.measured
        ? `; av-off per receiver<-sender median/pairs ${av.pairs.map((p) => `${p.receiver}<-${p.sender} ${f(p.medianMs)}/${p.n}`).join(' ')}, played locally ${f(av.localMs)}`
        : '';
      console.log(
        `${sc.padEnd(17)} ${String(run).padEnd(3)} ${(marker ? 'marker' : 'fake').padEnd(6)} ${`${load}/${loadAfter}`.padEnd(10)} ` +
          `${f(v.jbDelayMs).padStart(6)} ${f(v.jbTargetMs).padStart(6)} ${f(v.jbMinimumMs).padStart(5)} ${f(v.jitterMs).padStart(6)} ` +
          `${f(v.fps).padStart(5)} ${String(v.framesDropped).padStart(4)} ${f(v.decodeMs).padStart(6)} ${f(v.interFrameStdMs).padStart(6)} | ` +
          `${f(a.jbDelayMs).padStart(9)} ${f(a.jbTargetMs).padStart(6)} ${f(a.jbMinimumMs).padStart(5)} ${f(a.jitterMs).padStart(6)} | ${f(r.summary.syncGapMs).padStart(5)} | ${f(r.summary.pacerMs).padStart(5)} | ${avCols} | ${cpuCols}` +
          `   (video jb per receiver ${f(v.minJb)}-${f(v.maxJb)}${r.summary.layerChanges !== undefined ? `; layer changes ${r.summary.layerChanges}` : ''}${pairs})`,
      );
      delete r.server;
      results.push({ scenario: sc, run, load, loadAfter, ...r });
    }
  }
  if (o.json) {
    const prev = fs.existsSync(o.json) ? JSON.parse(fs.readFileSync(o.json, 'utf8')) : [];
    fs.writeFileSync(o.json, JSON.stringify([...prev, ...results.map((r) => ({ ...r, bin: process.env.KOLABMEET_BIN }))], null, 2));
  }
}

main().catch((e) => {
  console.error(e);
  process.exit(1);
});
