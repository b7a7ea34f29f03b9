// Browser suite harness: bundles page/client.js with esbuild, serves it on loopback,
// starts the real server (through the compatibility suite's helpers) and drives real
// Chromium pages with playwright-core.
'use strict';

const http = require('node:http');
const path = require('node:path');
const esbuild = require('esbuild');
const { chromium } = require('playwright-core');
const compat = require('../../compat/test/helpers.js');

const CHROMIUM = process.env.CHROMIUM_BIN || '/usr/bin/chromium';
const FLAGS = [
  '--headless',
  '--no-sandbox',
  '--use-fake-device-for-media-stream',
  '--use-fake-ui-for-media-stream',
  '--allow-loopback-in-peer-connection',
  '--disable-background-networking',
  // Screen capture without a picker in headless mode.
  '--auto-select-desktop-capture-source=Entire screen',
  '--enable-usermedia-screen-capturing',
  // Remote audio plays without a user gesture.
  '--autoplay-policy=no-user-gesture-required',
];

let bundle;
function pageBundle() {
  if (!bundle) {
    const out = esbuild.buildSync({
      entryPoints: [path.join(__dirname, '../page/client.js')],
      bundle: true,
      format: 'iife',
      platform: 'browser',
      write: false,
      logLevel: 'silent',
    });
    bundle = out.outputFiles[0].text;
  }
  return bundle;
}

/** Serves the test page on `host` (127.0.0.1 unless said). */
async function pageServer(host = '127.0.0.1') {
  const js = pageBundle();
  const srv = http.createServer((req, res) => {
    if (req.url === '/bundle.js') {
      res.writeHead(200, { 'content-type': 'text/javascript' });
      res.end(js);
    } else {
      res.writeHead(200, { 'content-type': 'text/html' });
      res.end('<!doctype html><html><body><script src="/bundle.js"></script></body></html>');
    }
  });
  await new Promise((r) => srv.listen(0, host, r));
  const shown = host === '0.0.0.0' ? '127.0.0.1' : host;
  return { url: `http://${shown}:${srv.address().port}/`, port: srv.address().port, close: () => srv.close() };
}

/** Launches Chromium (`executablePath`: a wrapper, e.g. one entering a network namespace). */
async function launch({ executablePath = CHROMIUM } = {}) {
  return chromium.launch({ executablePath, args: FLAGS, headless: true });
}

/**
 * A room with `count` Chromium participants, each joined through the Kolab flow with
 * `opts` (forceTcp, relayOnly, ...; or a function of the participant's index giving
 * them). Returns { server, browser, pages, close }.
 */
async function room(count, opts = {}, serverEnv = {}) {
  const server = await compat.startServer(serverEnv);
  const web = await pageServer();
  const browser = await launch();
  const roomId = await compat.createRoom(server);
  const pages = [];
  try {
    for (let i = 0; i < count; i++) {
      const peer = await compat.createPeer(server, roomId, 31);
      const context = await browser.newContext();
      const page = await context.newPage();
      page.on('pageerror', (e) => console.error(`page ${i}:`, e));
      await page.goto(web.url);
      await page.evaluate(
        (o) => window.kolab.start(o),
        { base: server.base, query: peer.query, nickname: `p${i}`, ...(typeof opts === 'function' ? opts(i) : opts) },
      );
      pages.push(Object.assign(page, { peer }));
    }
  } catch (e) {
    await browser.close();
    web.close();
    await server.stop();
    throw e;
  }
  return {
    server,
    roomId,
    browser,
    pages,
    close: async () => {
      await browser.close();
      web.close();
      await server.stop();
    },
  };
}

const stats = (page) => page.evaluate(() => window.kolab.stats());

/**
 * Waits until `pred(stats)` holds for a page, sampling every 500 ms; fails with the last
 * stats and the page log.
 */
async function waitStats(page, pred, what, ms = 30000) {
  const end = Date.now() + ms;
  let last;
  while (Date.now() < end) {
    last = await stats(page);
    if (pred(last)) return last;
    await new Promise((r) => setTimeout(r, 500));
  }
  const log = await page.evaluate(() => window.kolab.log());
  throw new Error(`${what}: not reached in ${ms} ms; stats ${JSON.stringify(last)}; log ${JSON.stringify(log)}`);
}

/** Waits until every remote video and audio of a page is being decoded and rising. */
async function decodingAll(page, { videos, audios, ms = 30000 } = {}) {
  const first = await waitStats(
    page,
    (s) =>
      s.filter((c) => c.kind === 'video' && c.framesDecoded > 0 && c.frameWidth > 0).length >= videos &&
      s.filter((c) => c.kind === 'audio' && c.totalSamplesReceived > 0).length >= audios,
    'decoding every remote stream',
    ms,
  );
  await new Promise((r) => setTimeout(r, 1500));
  const second = await stats(page);
  for (const c of first) {
    const now = second.find((x) => x.id === c.id);
    if (!now) continue;
    if (c.kind === 'video') {
      if (!(now.framesDecoded > c.framesDecoded)) throw new Error(`video ${c.id} stopped: ${JSON.stringify([c, now])}`);
    } else if (!(now.totalSamplesReceived > c.totalSamplesReceived)) {
      throw new Error(`audio ${c.id} stopped: ${JSON.stringify([c, now])}`);
    }
  }
  return second;
}

/** Runs one console command on the server's unix socket; its answer. */
function consoleLine(server, line) {
  return new Promise((resolve, reject) => {
    const s = require('node:net').connect(server.consolePath);
    let out = '';
    let sent = false;
    s.on('data', (d) => {
      out += d;
      if (!sent && out.includes('cmd> ')) {
        sent = true;
        out = '';
        s.write(line + '\n');
      } else if (sent && out.endsWith('cmd> ')) {
        s.end();
        resolve(out.slice(0, -'cmd> '.length).trim());
      }
    });
    s.on('error', reject);
    setTimeout(() => {
      s.destroy();
      reject(new Error(`console: no answer to ${line}`));
    }, 5000);
  });
}

// The server built with the fault injection (scripts/test-all.sh builds it), for the
// tests that make a worker or a transport fail on purpose.
const FAULT_BIN =
  process.env.KOLABMEET_FAULT_BIN || path.resolve(__dirname, '../../../target/release/kolabmeet-server-fault');

/** `GET /meetmedia/api/health`: its status and JSON body. */
async function health(server) {
  const r = await compat.api(server, 'GET', '/meetmedia/api/health');
  return { status: r.status, body: r.json };
}

/**
 * A new page `nickname` joined to `roomId` through the Kolab flow (one encoding, no
 * simulcast), in its own browser context; the page carries its `peer` and `nickname`.
 */
async function joinPage(browser, web, server, roomId, nickname) {
  const peer = await compat.createPeer(server, roomId, 31);
  const page = await (await browser.newContext()).newPage();
  page.on('pageerror', (e) => console.error(`${nickname}:`, e));
  await page.goto(web.url);
  await page.evaluate((o) => window.kolab.start(o), { base: server.base, query: peer.query, nickname, simulcast: false });
  return Object.assign(page, { peer, nickname });
}

module.exports = { room, stats, waitStats, decodingAll, compat, pageServer, launch, consoleLine, FAULT_BIN, health, joinPage };
