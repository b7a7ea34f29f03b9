// Issue 10: the meeting page that the binary serves at / on its embedded defaults. Two
// real Chromium pages open it, enter one room name with two nicknames and join through
// its UI; each shows the other's video playing under the other's name (checked on a
// screenshot of the tile: not black) and plays the other's audio; chat, a raised hand
// and a screen share reach the other; leaving removes the tiles. The generated API token
// never reaches a page. And the switch: DEMO_PAGE=off, or auto on a non-loopback
// listener, gives 404 at / and at the join endpoint.
'use strict';

const test = require('node:test');
const assert = require('node:assert/strict');
const os = require('node:os');
const path = require('node:path');
const { launch, compat } = require('./harness.js');

/**
 * The binary on its embedded defaults. Only what cannot be shared with other servers on
 * this machine is set: a free listening port, free media ports and a console socket of
 * its own (the default path would take over another running server's console).
 */
function startDefaults(env = {}) {
  const consoleSocket = path.join(os.tmpdir(), `kolabmeet-meeting-${process.pid}-${Date.now()}.sock`);
  return compat.startServer({ CONSOLE_SOCKET: consoleSocket, ...env }, { clean: true });
}

/** Opens the page in a fresh browser context and joins `room` as `nickname` through its UI. */
async function joinThroughUi(browser, base, room, nickname, seen) {
  const context = await browser.newContext();
  const page = await context.newPage();
  page.on('pageerror', (e) => console.error(`${nickname}:`, e));
  page.on('response', async (r) => {
    const type = r.headers()['content-type'] ?? '';
    if (/json|html|javascript|css|text/.test(type)) seen.push(await r.text().catch(() => ''));
  });
  await page.goto(`${base}/`);
  await page.fill('#room', room);
  await page.fill('#nickname', nickname);
  await page.click('#join');
  await page.waitForSelector('#meeting[data-state="joined"]', { timeout: 60000 });
  const peerId = await page.evaluate(() => document.querySelector('.tile.local').dataset.peerId);
  return Object.assign(page, { peerId, nickname });
}

/** Waits until `page` plays `peerId`'s `source` video, named `name`, with frames advancing. */
async function waitPlaying(page, peerId, source, name) {
  await page.waitForFunction(
    async ({ peerId, source, name }) => {
      const tile = document.querySelector(`.tile[data-peer-id="${peerId}"][data-source="${source}"]`);
      const video = tile?.querySelector('video');
      if (!video || tile.querySelector('.name').textContent !== name) return false;
      if (video.paused || video.readyState < 2 || video.videoWidth === 0) return false;
      const t = video.currentTime;
      await new Promise((r) => setTimeout(r, 300));
      return video.currentTime > t;
    },
    { peerId, source, name },
    { timeout: 60000, polling: 500 },
  );
}

/**
 * A screenshot of the tile's video, decoded by Chromium in a blank page: the share of
 * pixels that are not black (the fake camera draws a coloured frame).
 */
async function litShare(page, peerId, source) {
  const video = page.locator(`.tile[data-peer-id="${peerId}"][data-source="${source}"] video`);
  const box = await video.boundingBox();
  assert.ok(box && box.width > 50 && box.height > 50, `tile box ${JSON.stringify(box)}`);
  const png = await page.screenshot({ clip: box });
  const blank = await page.context().newPage();
  try {
    return await blank.evaluate(async (b64) => {
      const img = new Image();
      img.src = `data:image/png;base64,${b64}`;
      await img.decode();
      const canvas = document.createElement('canvas');
      canvas.width = img.naturalWidth;
      canvas.height = img.naturalHeight;
      const ctx = canvas.getContext('2d');
      ctx.drawImage(img, 0, 0);
      const { data } = ctx.getImageData(0, 0, canvas.width, canvas.height);
      let lit = 0;
      for (let i = 0; i < data.length; i += 4) if (data[i] + data[i + 1] + data[i + 2] > 60) lit += 1;
      return lit / (data.length / 4);
    }, png.toString('base64'));
  } finally {
    await blank.close();
  }
}

/** Waits until `page` plays `peerId`'s audio in the tile (an audio element whose time advances). */
async function waitAudio(page, peerId) {
  await page.waitForFunction(
    async (peerId) => {
      const audio = document.querySelector(`.tile[data-peer-id="${peerId}"][data-source="webcam"] audio`);
      if (!audio || audio.paused) return false;
      const t = audio.currentTime;
      await new Promise((r) => setTimeout(r, 300));
      return audio.currentTime > t;
    },
    peerId,
    { timeout: 60000, polling: 500 },
  );
}

test('two people meet through the page the binary serves', { timeout: 240000 }, async () => {
  const server = await startDefaults();
  const token = /generated AUTH_TOKEN=([0-9a-f]+)/.exec(server.stdout)?.[1];
  assert.ok(token, `the server prints its generated token: ${server.stdout}`);
  const browser = await launch();
  const seen = [];
  try {
    const alice = await joinThroughUi(browser, server.base, 'Demo room', 'Alice', seen);
    const bob = await joinThroughUi(browser, server.base, 'Demo room', 'Bob', seen);
    assert.notEqual(alice.peerId, bob.peerId);
    for (const [page, other] of [[alice, bob], [bob, alice]]) {
      await waitPlaying(page, other.peerId, 'webcam', other.nickname);
      await waitAudio(page, other.peerId);
      // Polled: the tile may show a black frame until the compositor has the video's
      // first frames.
      const shares = [];
      for (let i = 0; i < 20 && !(shares.at(-1) > 0.3); i++) {
        if (i > 0) await new Promise((r) => setTimeout(r, 500));
        shares.push(await litShare(page, other.peerId, 'webcam'));
      }
      assert.ok(shares.at(-1) > 0.3, `${page.nickname} sees ${other.nickname}'s video: ${shares.map((s) => (s * 100).toFixed(1)).join(', ')} % of the tile not black`);
    }

    await alice.fill('#chat-input', 'hello from Alice');
    await alice.press('#chat-input', 'Enter');
    await bob.waitForFunction(
      () => [...document.querySelectorAll('#chat-log li')].some((li) => li.querySelector('.from').textContent === 'Alice' && li.querySelector('.text').textContent === 'hello from Alice'),
      null,
      { timeout: 20000, polling: 200 },
    );

    await bob.click('#toggle-hand');
    for (const page of [alice, bob]) {
      await page.waitForFunction(
        (id) => {
          const tile = document.querySelector(`.tile[data-peer-id="${id}"][data-source="webcam"]`);
          return tile?.classList.contains('hand-raised') && !tile.querySelector('.hand').hidden;
        },
        bob.peerId,
        { timeout: 20000, polling: 200 },
      );
    }
    assert.equal(await bob.getAttribute('#toggle-hand', 'aria-pressed'), 'true');

    await alice.click('#toggle-screen');
    await waitPlaying(bob, alice.peerId, 'screen', 'Alice: screen');

    await alice.click('#leave');
    await bob.waitForFunction((id) => !document.querySelector(`.tile[data-peer-id="${id}"]`), alice.peerId, { timeout: 30000, polling: 200 });
    assert.equal(await alice.isVisible('#lobby'), true, 'Alice is back in the lobby');

    for (const body of seen) assert.ok(!body.includes(token), 'a page received the API token');
    assert.ok(seen.some((b) => b.includes('"authToken"')), 'the join answers were seen');
  } finally {
    await browser.close();
    await server.stop();
  }
});

test('the page is served only where DEMO_PAGE allows it', { timeout: 60000 }, async () => {
  const post = (base, headers = { 'Content-Type': 'application/json' }) =>
    fetch(`${base}/demo/join`, { method: 'POST', headers, body: JSON.stringify({ room: 'r', nickname: 'n' }) });

  const on = await startDefaults();
  try {
    const page = await fetch(`${on.base}/`);
    assert.equal(page.status, 200);
    assert.match(page.headers.get('content-security-policy'), /default-src 'none'/);
    assert.match(await page.text(), /<script src="\/demo\/meeting.js"/);
    assert.equal((await fetch(`${on.base}/demo/meeting.js`)).status, 200);
    const joined = await post(on.base);
    assert.equal(joined.status, 200);
    const body = await joined.json();
    assert.deepEqual(Object.keys(body.query).sort(), ['authToken', 'peerId', 'roomId']);
    assert.equal((await post(on.base, { 'Content-Type': 'text/plain' })).status, 415);
    assert.equal((await post(on.base, { 'Content-Type': 'application/json', Origin: 'http://evil.example' })).status, 403);
  } finally {
    await on.stop();
  }

  for (const env of [{ DEMO_PAGE: 'off' }, { LISTENING_HOST: '0.0.0.0' }]) {
    const server = await startDefaults(env);
    try {
      assert.equal((await fetch(`${server.base}/`)).status, 404, JSON.stringify(env));
      assert.equal((await post(server.base)).status, 404, JSON.stringify(env));
      assert.equal((await fetch(`${server.base}/ping`)).status, 200);
    } finally {
      await server.stop();
    }
  }
});
