#!/usr/bin/env node
// Prints receivers' jitter-buffer figures (issue 8, "latency as receivers feel it") for
// three Chromium participants sending one 640x480 VP8 encoding + Opus, through
// kolabmeet-server, over a direct Chromium mesh, and through Janus when installed; each
// with and without audio (without it there is no lip sync to wait for).
//
//   node latency.js [--runs 3] [--warmup 10] [--window 20] [--fps 15]
//                   [--only kolabmeet,kolabmeet-video,p2p,p2p-video,janus,janus-video]
//                   [--json out.json]
//
// KOLABMEET_BIN picks the server binary (default: target/release/kolabmeet-server).
'use strict';

const fs = require('node:fs');
const { measure, janusAvailable } = require('./test/latency.js');

function args() {
  const a = { runs: 3, warmup: 10, window: 20, fps: 15, only: null, json: null, env: {} };
  const v = process.argv.slice(2);
  for (let i = 0; i < v.length; i++) {
    const k = v[i].replace(/^--/, '');
    if (k === 'env') {
      const [name, value] = v[++i].split('=');
      a.env[name] = value;
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
  console.log(
    'scenario          run load(1m)  video: jb  target  min   jitter fps   drop decode ifdStd | audio: jb  target  min   jitter | v-a  | pacer',
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
        });
      } catch (e) {
        console.log(`${sc.padEnd(17)} ${run}   failed: ${e.message}`);
        continue;
      }
      const loadAfter = fs.readFileSync('/proc/loadavg', 'utf8').split(' ')[0];
      const v = r.summary.video;
      const a = r.summary.audio ?? {};
      console.log(
        `${sc.padEnd(17)} ${String(run).padEnd(3)} ${`${load}/${loadAfter}`.padEnd(10)} ` +
          `${f(v.jbDelayMs).padStart(6)} ${f(v.jbTargetMs).padStart(6)} ${f(v.jbMinimumMs).padStart(5)} ${f(v.jitterMs).padStart(6)} ` +
          `${f(v.fps).padStart(5)} ${String(v.framesDropped).padStart(4)} ${f(v.decodeMs).padStart(6)} ${f(v.interFrameStdMs).padStart(6)} | ` +
          `${f(a.jbDelayMs).padStart(9)} ${f(a.jbTargetMs).padStart(6)} ${f(a.jbMinimumMs).padStart(5)} ${f(a.jitterMs).padStart(6)} | ${f(r.summary.syncGapMs).padStart(5)} | ${f(r.summary.pacerMs)}` +
          `   (video jb per receiver ${f(v.minJb)}-${f(v.maxJb)}${r.summary.layerChanges !== undefined ? `; layer changes ${r.summary.layerChanges}` : ''})`,
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
