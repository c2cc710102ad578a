// The web monitor (GET /monitor) driven in headless Chromium: sign in, see the device online,
// start a run from the form, watch it progress live, pause it (the device gets step/pause),
// resume it to completion; the run form built from a workflow's parameter schema (its checks and the
// server's field errors); and a WebSocket drop in the middle of a run, after which the page
// resumes with after_seq and shows every durable event once, in order.
//
// Needs Debian's Chromium at /usr/bin/chromium (browsers cannot be downloaded here); `npm test`
// installs it through scripts/setup.ts when run as root. Without it this file fails, loudly.
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { existsSync, mkdirSync } from 'node:fs';
import { resolve } from 'node:path';
import { chromium, type Browser, type BrowserContext, type Page } from 'playwright-core';
import { DeviceClient, demoHandlers, type StepHandler } from '../../src/clients/device-client.ts';
import { MONITOR_CSP } from '../../src/http/monitor-page.ts';
import { MONITOR_SCRIPT_PATH } from '../../src/http/monitor-script.ts';
import { addDevice, addWorkflow, eventually, linear, signup } from '../helpers/api.ts';
import { connectTestDevice, testHandlers, type TestDevice } from '../helpers/devices.ts';
import { startSystem, type System } from '../helpers/system.ts';

const CHROMIUM = '/usr/bin/chromium';
const ARTIFACTS = resolve(import.meta.dirname, '..', '..', 'test-artifacts');
const PASSWORD = 'correct horse battery'; // what signup() registers
/** A device name that must show up as text, never as markup. */
const HOSTILE_NAME = '<img src=x onerror="window.__pwned=1">Evil PC';
const HOSTILE_LOG = '<b>not bold</b> & friends';

let sys: System;
let user: { token: string; userId: string; email: string };
let device: { id: string; deviceToken: string };
let evilDevice: { id: string; deviceToken: string };
let pc: TestDevice;
let workflowId: string;
let browser: Browser;
let context: BrowserContext;
let page: Page;
const pageErrors: string[] = [];

/** demo.sleep that also writes to the run's log (with text that looks like HTML). */
function handlers(): Record<string, StepHandler> {
  return {
    ...testHandlers(),
    'demo.screenshot': demoHandlers['demo.screenshot'],
    'demo.sleep': async (params, ctx) => {
      ctx.log('info', `sleeping ${(params as { ms: number }).ms} ms ${HOSTILE_LOG}`, { step: ctx.stepId });
      const out = await demoHandlers['demo.sleep'](params, ctx);
      ctx.log('warn', 'woke up');
      return out;
    },
  };
}

beforeAll(async () => {
  if (!existsSync(CHROMIUM)) {
    throw new Error(`${CHROMIUM} is missing: the web monitor tests drive Debian's Chromium (browsers cannot be downloaded). ` +
      'Install it with "sudo apt-get install chromium" (npm test does it itself when run as root), then run npm test again.');
  }
  browser = await chromium.launch({
    executablePath: CHROMIUM,
    args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run',
      '--disable-background-networking', '--disable-component-update', '--disable-sync'],
  });
  sys = await startSystem();
  user = await signup(sys.api);
  device = await addDevice(sys.api, user.token);
  pc = await connectTestDevice(sys.wsUrl, device.deviceToken, handlers());
  // A second device, never connected, whose name is hostile markup.
  const evil = await sys.api.post('/users/devices', { device_id: 'evil-pc', device_name: HOSTILE_NAME, os_type: 'linux' }, user.token);
  expect(evil.status).toBe(201);
  evilDevice = { id: evil.body.data.device.id, deviceToken: evil.body.data.device_token };
  workflowId = await addWorkflow(sys.api, user.token, linear([
    // Long enough that the pause always lands while the device is still in this step.
    { type: 'demo.sleep', name: 'Nap', params: { ms: 6000 } },
    { type: 'demo.echo', name: 'Say hi', params: { text: 'hi' } },
  ]), 'Nap then say hi');

  context = await browser.newContext({ viewport: { width: 1100, height: 1000 } });
  page = await context.newPage();
  page.on('pageerror', (err) => pageErrors.push(`pageerror: ${err.message}`));
  // Errors and CSP violations; an HTTP error answer (the wrong password's 401) is expected.
  page.on('console', (msg) => {
    if (msg.type() === 'error' && !msg.text().startsWith('Failed to load resource')) pageErrors.push(`console: ${msg.text()}`);
  });
}, 120_000);

afterAll(async () => {
  await context?.close().catch(() => undefined);
  await browser?.close().catch(() => undefined);
  await pc?.client.stop();
  await sys?.stop();
});

const sel = (name: string) => `[data-test="${name}"]`;
const text = (name: string) => page.locator(sel(name)).first().innerText();

/** Waits until the element's text (trimmed) satisfies `ok`, polling in the page. */
async function waitText(name: string, ok: (t: string) => boolean, what: string, timeoutMs = 20_000): Promise<string> {
  const deadline = Date.now() + timeoutMs;
  let last = '';
  while (Date.now() < deadline) {
    last = (await page.locator(sel(name)).first().textContent().catch(() => '')) ?? '';
    if (ok(last.trim())) return last.trim();
    await page.waitForTimeout(50);
  }
  throw new Error(`timed out waiting for ${what}; [data-test="${name}"] says "${last.trim()}"`);
}

async function progress(): Promise<number> {
  return Number(await page.locator(sel('progress')).getAttribute('aria-valuenow'));
}

/** What the tests read of an <img> (the test code is type-checked without the DOM library). */
interface Img { complete: boolean; naturalWidth: number; naturalHeight: number }
interface PageState { connected: boolean; connects: number; taskId: string | null; status: string | null; lastSeq: number; seqs: number[] }
const state = () => page.evaluate(() => (globalThis as unknown as { __jarvisMonitor: { state(): PageState } }).__jarvisMonitor.state());

/** The durable events the task view lists, as [seq, kind]. */
async function shownEvents(): Promise<[number, string][]> {
  return page.locator(sel('event')).evaluateAll((els) =>
    els.map((e) => [Number(e.getAttribute('data-seq')), String(e.getAttribute('data-kind'))] as [number, string]));
}

describe('GET /monitor', () => {
  it('is one self-contained page with its own CSP', async () => {
    const res = await fetch(`${sys.url}/monitor`);
    expect(res.status).toBe(200);
    expect(res.headers.get('content-type')).toMatch(/^text\/html/);
    expect(res.headers.get('content-security-policy')).toBe(MONITOR_CSP);
    const html = await res.text();
    expect(html).toContain('<script>');
    // Its one script from elsewhere is the protocol codec, from its own origin.
    const codecTag = `<script src="${MONITOR_SCRIPT_PATH}"></script>`;
    expect(html).toContain(codecTag);
    expect(html.replace(codecTag, '')).not.toMatch(/<script[^>]+src=|<link[^>]+stylesheet|https?:\/\//);
    expect(html).not.toContain('innerHTML');
    // The REST API keeps its strict policy.
    const api = await fetch(`${sys.url}/api/v1/workflows`);
    expect(api.headers.get('content-security-policy')).toBe("default-src 'none'; frame-ancestors 'none'");
  });
});

describe('the web monitor in Chromium', () => {
  let taskId: string;

  it('signs in and shows the devices with their presence', async () => {
    const res = await page.goto(`${sys.url}/monitor`);
    expect(res?.status()).toBe(200);
    await page.locator(sel('login-email')).fill(user.email);
    await page.locator(sel('login-password')).fill('wrong password');
    await page.locator(sel('login-submit')).click();
    await waitText('login-error', (t) => t.includes('Could not sign in'), 'the login error');

    await page.locator(sel('login-password')).fill(PASSWORD);
    await page.locator(sel('login-submit')).click();
    await page.locator(sel('app')).waitFor({ state: 'visible' });
    await waitText('ws-state', (t) => t === 'live', 'the socket');
    expect(await text('user-email')).toBe(user.email);

    const online = page.locator(`${sel('device')}[data-device-id="${device.id}"]`);
    await online.waitFor();
    expect(await online.getAttribute('data-online')).toBe('true');
    expect(await online.locator(sel('device-presence')).innerText()).toBe('online');
    expect(await online.locator('.dot.on').count()).toBe(1);

    // Device-provided text is shown as text.
    const evil = page.locator(sel('device'), { hasText: 'Evil PC' });
    expect(await evil.locator(sel('device-name')).innerText()).toBe(HOSTILE_NAME);
    expect(await evil.locator(sel('device-presence')).innerText()).toBe('offline');
    expect(await page.locator(`${sel('devices')} img`).count()).toBe(0);
    expect(await page.evaluate(() => (globalThis as unknown as { __pwned?: number }).__pwned)).toBeUndefined();

    const stored = await page.evaluate(() => JSON.parse(sessionStorage.getItem('jarvis.monitor.auth') ?? 'null'));
    expect(stored.access_token).toEqual(expect.any(String));
    expect(stored.refresh_token).toEqual(expect.any(String));
  }, 60_000);

  it('follows presence and readings as they are pushed (online, busy, offline; cpu, memory, battery) without asking for them', async () => {
    const deviceReads: string[] = [];
    const onRequest = (req: { url(): string }) => {
      if (new URL(req.url()).pathname.endsWith('/users/devices')) deviceReads.push(req.url());
    };
    page.on('request', onRequest);
    const row = page.locator(`${sel('device')}[data-device-id="${evilDevice.id}"]`);
    const rowPresence = () => row.locator(sel('device-presence')).innerText();
    expect(await rowPresence()).toBe('offline');
    const other = new DeviceClient({
      url: sys.wsUrl, token: evilDevice.deviceToken, handlers: testHandlers(), reconnect: false,
      status: () => ({ cpu_percent: 33.4, memory_percent: 71, battery: { percent: 55, charging: true } }),
    });
    try {
      await other.start();
      await eventually(async () => (await rowPresence()) === 'online', 10_000, 'the device online on the page');
      expect(await row.getAttribute('data-online')).toBe('true');
      // The readings it connected with, then a change of them, come pushed.
      const readings = () => row.locator(sel('device-readings')).innerText().catch(() => '');
      await eventually(async () => (await readings()) === 'CPU 33% \u00b7 memory 71% \u00b7 battery 55% (charging)', 10_000, 'the readings on the page');
      other.sendStatus({ cpu_percent: 80.2, battery: { percent: 54, charging: false } });
      await eventually(async () => (await readings()) === 'CPU 80% \u00b7 memory 71% \u00b7 battery 54%', 10_000, 'the new readings on the page');
      expect(await row.locator('.dot.on').count()).toBe(1);
      other.sendStatus({ busy: true });
      await eventually(async () => (await rowPresence()) === 'busy', 10_000, 'the device busy on the page');
      expect(await page.locator(`${sel('run-device')} option[value="${evilDevice.id}"]`).innerText()).toContain('(busy)');
      other.sendStatus({ busy: false });
      await eventually(async () => (await rowPresence()) === 'online', 10_000, 'the device idle again');
    } finally {
      await other.stop();
    }
    await eventually(async () => (await rowPresence()) === 'offline', 10_000, 'the device offline on the page');
    expect(await row.locator('.dot.on').count()).toBe(0);
    page.off('request', onRequest);
    expect(deviceReads).toEqual([]);
    // What was pushed is what the server stored: a fresh read of the list shows the same.
    await page.locator('#devices-reload').click();
    await row.locator(sel('device-readings')).waitFor({ timeout: 5_000 });
    expect(await row.locator(sel('device-readings')).innerText()).toBe('CPU 80% \u00b7 memory 71% \u00b7 battery 54%');
    expect(await rowPresence()).toBe('offline');
    const online = page.locator(`${sel('device')}[data-device-id="${device.id}"]`);
    expect(await online.locator(sel('device-presence')).innerText()).toBe('online');
  }, 60_000);

  it('starts a run from the form, watches it progress, pauses and resumes it to completion', async () => {
    await page.locator(sel('run-workflow')).selectOption(workflowId);
    await page.locator(sel('run-device')).selectOption(device.id);
    await page.locator(sel('run-params')).fill('{"who": "page"}');
    await page.locator(sel('run-submit')).click();

    await page.locator(sel('task-view')).waitFor({ state: 'visible' });
    taskId = await page.locator(sel('task-id')).innerText();
    expect(taskId).toMatch(/^[0-9a-f-]{36}$/);
    const created = await sys.api.get(`/tasks/${taskId}`, user.token);
    expect(created.status).toBe(200);
    expect(created.body.data.task.parameters).toEqual({ who: 'page' });
    await waitText('task-status', (t) => t === 'running', 'status running');
    await page.locator(`${sel('task-row')}[data-task-id="${taskId}"]`).waitFor();

    // Live step.progress moves the bar while the first step sleeps.
    const seen: number[] = [];
    await eventually(async () => {
      seen.push(await progress());
      return seen.filter((p) => p > 0).length >= 2 && new Set(seen.filter((p) => p > 0)).size >= 2;
    }, 15_000, 'the progress bar to advance');
    expect(Math.max(...seen)).toBeLessThanOrEqual(50); // the first of two steps
    expect(await text('task-current-step')).toContain('Nap');
    await waitText('log', (t) => t.includes(HOSTILE_LOG), 'the device log line');
    expect(await page.locator(`${sel('log')} b`).count()).toBe(0);

    await page.locator(sel('btn-pause')).click();
    await waitText('task-status', (t) => t === 'paused', 'status paused');
    await eventually(async () => pc.events.some((e) => e.type === 'control' && e.action === 'pause'), 10_000, 'step/pause at the device');
    await page.locator(`${sel('event')}[data-kind="run.paused"]`).waitFor();
    // Pausing a paused run is not allowed: the page says so (the 409 message).
    await page.locator(sel('btn-pause')).click();
    await waitText('control-message', (t) => t.startsWith('Not allowed now'), 'the 409 message');
    // Held: once the tick in flight at the pause has landed, the bar does not move.
    await page.waitForTimeout(600);
    const held = await progress();
    await page.waitForTimeout(800);
    expect(await progress()).toBe(held);
    expect(await text('task-status')).toBe('paused');

    await page.locator(sel('btn-resume')).click();
    await waitText('task-status', (t) => t === 'completed', 'status completed', 30_000);
    expect(await progress()).toBe(100);
    expect(await text('progress-text')).toBe('100%');
    expect(pc.events.some((e) => e.type === 'control' && e.action === 'resume')).toBe(true);

    const steps = await page.locator(sel('step')).evaluateAll((els) =>
      els.map((e) => [e.getAttribute('data-step-id'), e.getAttribute('data-status')]));
    expect(steps).toEqual([['s1', 'completed'], ['s2', 'completed']]);
    const events = await shownEvents();
    expect(events.map(([seq]) => seq)).toEqual(events.map((_, i) => i + 1));
    expect(events.map(([, kind]) => kind)).toEqual([
      'run.pending', 'run.started', 'step.dispatched', 'run.paused', 'run.resumed',
      'step.completed', 'step.dispatched', 'step.completed', 'run.completed',
    ]);
    expect(await page.locator(sel('temporal-link')).getAttribute('href')).toContain(`/workflows/task-${taskId}`);
    await waitText('log', (t) => t.includes('WARN woke up'), 'the second log line');
    // The list follows (the mirror, via the user feed).
    await eventually(async () =>
      (await page.locator(`${sel('task-row')}[data-task-id="${taskId}"] ${sel('task-row-status')}`).innerText()) === 'completed',
    10_000, 'the task list to say completed');

    mkdirSync(ARTIFACTS, { recursive: true });
    await page.locator(sel('task-view')).scrollIntoViewIfNeeded();
    await page.screenshot({ path: resolve(ARTIFACTS, 'monitor-task-view.png'), fullPage: true });
    // And on a phone: one column, nothing wider than the screen.
    await page.setViewportSize({ width: 390, height: 844 });
    expect(await page.locator('html').evaluate((e) => e.scrollWidth)).toBeLessThanOrEqual(390);
    await page.screenshot({ path: resolve(ARTIFACTS, 'monitor-task-view-phone.png'), fullPage: true });
    await page.setViewportSize({ width: 1100, height: 1000 });
  }, 90_000);

  it('resumes after a WebSocket drop mid-run: no gap, no duplicate', async () => {
    const wf = await addWorkflow(sys.api, user.token, linear([
      { type: 'demo.sleep', name: 'First nap', params: { ms: 1200 } },
      { type: 'demo.sleep', name: 'Second nap', params: { ms: 1200 } },
      { type: 'demo.echo', name: 'Done', params: {} },
    ]), 'Two naps');
    // A reload keeps the session (sessionStorage); an access token the API refuses (401) is
    // replaced with the refresh token.
    const spent = await page.evaluate(() => {
      const auth = JSON.parse(sessionStorage.getItem('jarvis.monitor.auth') ?? 'null');
      const old = auth.refresh_token;
      sessionStorage.setItem('jarvis.monitor.auth', JSON.stringify({ ...auth, access_token: 'aaa.bbb.ccc' }));
      return old as string;
    });
    await page.reload();
    await page.locator(sel('app')).waitFor({ state: 'visible' });
    const renewed = await page.evaluate(() => JSON.parse(sessionStorage.getItem('jarvis.monitor.auth') ?? 'null'));
    expect(renewed.refresh_token).not.toBe(spent);
    expect((await sys.api.get('/auth/me', renewed.access_token)).status).toBe(200);
    await waitText('ws-state', (t) => t === 'live', 'the socket');
    await page.locator(`${sel('run-workflow')} option[value="${wf}"]`).waitFor({ state: 'attached' });
    await page.locator(sel('run-workflow')).selectOption(wf);
    await page.locator(sel('run-device')).selectOption(device.id);
    await page.locator(sel('run-params')).fill('');
    await page.locator(sel('run-submit')).click();
    await eventually(async () => {
      const s = await state();
      return s.taskId && s.taskId !== taskId && s.seqs.length >= 3 && s;
    }, 15_000, 'the first step of the new run');
    const before = await state();
    const newTask = before.taskId!;
    expect(await text('task-status')).toBe('running');

    // Drop the socket and stay down long enough for events to happen meanwhile.
    await page.evaluate(() => (globalThis as unknown as { __jarvisMonitor: { dropSocket(ms: number): void } }).__jarvisMonitor.dropSocket(1800));
    await eventually(async () => !(await state()).connected, 5_000, 'the socket to drop');
    await waitText('ws-state', (t) => t !== 'live', 'the page to show the drop', 2_000);
    const whileDown = await state();
    // While the page is down the run moves on.
    await eventually(async () => {
      const r = await sys.api.get(`/tasks/${newTask}/events`, user.token);
      return r.body.data.list.length > whileDown.lastSeq + 1;
    }, 10_000, 'events while the page is disconnected');

    await waitText('ws-state', (t) => t === 'live', 'the reconnection', 15_000);
    await waitText('task-status', (t) => t === 'completed', 'status completed', 30_000);
    const after = await state();
    expect(after.connects).toBeGreaterThan(before.connects);
    expect(after.taskId).toBe(newTask);

    const events = await shownEvents();
    const seqs = events.map(([seq]) => seq);
    expect(seqs).toEqual(seqs.map((_, i) => i + 1)); // no gap, no duplicate
    expect(after.seqs).toEqual(seqs);
    expect(events.map(([, kind]) => kind)).toEqual([
      'run.pending', 'run.started',
      'step.dispatched', 'step.completed',
      'step.dispatched', 'step.completed',
      'step.dispatched', 'step.completed',
      'run.completed',
    ]);
    expect(seqs.length).toBeGreaterThan(whileDown.lastSeq + 1);
    // The same events the server recorded.
    const stored = await eventually(async () => {
      const r = await sys.api.get(`/tasks/${newTask}/events`, user.token);
      return r.body.data.list.length === seqs.length && r.body.data.list;
    }, 10_000, 'the mirrored events');
    expect(stored.map((e: { seq: number; kind: string }) => [e.seq, e.kind])).toEqual(events);
    expect(await progress()).toBe(100);
  }, 90_000);

  it('shows an approval the run waits at; Approve sends the run down its approved edge', async () => {
    const wf = await addWorkflow(sys.api, user.token, {
      nodes: [
        { id: 'start', type: 'start' },
        { id: 'ask', type: 'approval', name: 'Ask', params: { message: 'Send the <i>report</i>?', timeoutMs: 60_000, onTimeout: 'reject' } },
        { id: 'send', type: 'demo.echo', name: 'Send', params: { sent: true } },
        { id: 'skip', type: 'demo.echo', name: 'Skip', params: { sent: false } },
        { id: 'end', type: 'end' },
      ],
      edges: [
        { from: 'start', to: 'ask' }, { from: 'ask', to: 'send', when: 'approved' }, { from: 'ask', to: 'skip', when: 'rejected' },
        { from: 'send', to: 'end' }, { from: 'skip', to: 'end' },
      ],
    }, 'Ask first');
    // Started elsewhere (REST); the page opens it from its task list.
    const res = await sys.api.post('/tasks', { workflow_id: wf, device_id: device.id }, user.token);
    expect(res.status).toBe(201);
    const id: string = res.body.data.task.id;
    const row = page.locator(`${sel('task-row')}[data-task-id="${id}"]`);
    await row.waitFor({ timeout: 10_000 });
    await row.click();
    await page.locator(sel('approval')).waitFor({ state: 'visible', timeout: 15_000 });
    expect(await text('approval-message')).toBe('Send the <i>report</i>?');
    expect(await page.locator(`${sel('approval')} i`).count()).toBe(0);
    await page.locator(sel('btn-approve')).click();
    await waitText('task-status', (t) => t === 'completed', 'status completed', 20_000);
    expect(await page.locator(sel('approval')).isVisible()).toBe(false);
    expect(await page.locator(`${sel('event')}[data-kind="run.approval_decided"]`).innerText()).toContain('approved');
    expect(pc.dispatches(id).map((d) => d.step_id)).toEqual(['send']);
    const steps = await page.locator(sel('step')).evaluateAll((els) =>
      els.map((e) => [e.getAttribute('data-step-id'), e.getAttribute('data-status')]));
    expect(steps).toEqual([['send', 'completed'], ['skip', 'skipped']]);
  }, 60_000);

  it('shows a step\'s screenshot as a thumbnail, full size on click', async () => {
    const wf = await addWorkflow(sys.api, user.token, linear([
      { type: 'demo.screenshot', name: 'Look', params: { width: 800, height: 500 } },
      { type: 'demo.echo', name: 'After', params: {} },
    ]), 'Take a look');
    const res = await sys.api.post('/tasks', { workflow_id: wf, device_id: device.id }, user.token);
    expect(res.status).toBe(201);
    const id: string = res.body.data.task.id;
    const row = page.locator(`${sel('task-row')}[data-task-id="${id}"]`);
    await row.waitFor({ timeout: 10_000 });
    await row.click();
    await waitText('task-status', (t) => t === 'completed', 'status completed', 20_000);
    const [artifact] = (await sys.api.get(`/tasks/${id}/artifacts`, user.token)).body.data.list;
    const thumb = page.locator(`${sel('step')}[data-step-id="s1"] ${sel('artifact-thumb')}`);
    await thumb.waitFor();
    expect(await thumb.getAttribute('data-artifact-id')).toBe(artifact.id);
    expect(await page.locator(`${sel('step')}[data-step-id="s2"] ${sel('artifact-thumb')}`).count()).toBe(0);
    // Decoded by the browser: the 320 px WebP thumbnail, not the full image.
    const natural = () => thumb.evaluate((e): [boolean, number, number] => { const img = e as unknown as Img; return [img.complete, img.naturalWidth, img.naturalHeight]; });
    await eventually(async () => (await natural())[1] > 0, 10_000, 'the thumbnail to load');
    expect(await natural()).toEqual([true, 320, 200]);
    expect(await page.locator(`${sel('event')}[data-kind="step.artifact"]`).count()).toBe(1);

    await thumb.click();
    const viewer = page.locator(sel('artifact-viewer'));
    await viewer.waitFor({ state: 'visible' });
    const full = page.locator(sel('artifact-full'));
    await eventually(async () => (await full.evaluate((e) => (e as unknown as Img).naturalWidth)) === 800, 10_000, 'the full image');
    expect(await full.evaluate((e) => (e as unknown as Img).naturalHeight)).toBe(500);
    expect(await text('artifact-caption')).toBe(`screen-s1.png \u00b7 800 \u00d7 500`);
    await page.setViewportSize({ width: 390, height: 844 });
    expect(await full.evaluate((e) => e.getBoundingClientRect().width)).toBeLessThanOrEqual(390);
    mkdirSync(ARTIFACTS, { recursive: true });
    await page.screenshot({ path: resolve(ARTIFACTS, 'monitor-artifact-phone.png') });
    await page.setViewportSize({ width: 1100, height: 1000 });
    await viewer.click();
    await viewer.waitFor({ state: 'hidden' });
  }, 60_000);

  it('lists the notifications with an unread badge; opening one marks it read, and so does mark all read', async () => {
    const unread = async () => (await sys.api.get('/notifications/unread-count', user.token)).body.data.unread as number;
    // A run ends while the page is open: the feed's frame brings it into the list and the badge.
    const quick = await addWorkflow(sys.api, user.token, linear([{ type: 'demo.echo' }]), 'Quick one');
    const res = await sys.api.post('/tasks', { workflow_id: quick, device_id: device.id }, user.token);
    expect(res.status).toBe(201);
    const taskId: string = res.body.data.task.id;
    const stored = await eventually(async () => ((await sys.api.get('/notifications?page_size=100', user.token)).body.data.list as { id: string; task_id: string; title: string }[])
      .find((n) => n.task_id === taskId), 20_000, 'the stored notification');
    const item = page.locator(`${sel('note')}[data-id="${stored.id}"]`);
    await item.waitFor({ timeout: 15_000 });
    expect(await item.innerText()).toContain('Quick one: Run completed');
    expect(await item.getAttribute('class')).toContain('unread');
    const before = await unread();
    expect(before).toBeGreaterThan(0);
    await waitText('notes-badge', (t) => t === String(before), 'the unread badge');
    // Opening it marks it read and opens its task.
    await item.click();
    await waitText('task-id', (t) => t === taskId, 'the task opened');
    await eventually(async () => (await unread()) === before - 1, 10_000, 'marked read');
    await waitText('notes-badge', (t) => t === String(before - 1) || (before === 1 && t === '0'), 'the badge after a read');
    await page.locator(sel('notes-read-all')).click();
    await eventually(async () => (await unread()) === 0, 10_000, 'all read');
    await page.locator(sel('notes-badge')).waitFor({ state: 'hidden', timeout: 10_000 });
    expect(await page.locator(`${sel('note')}.unread`).count()).toBe(0);
  }, 60_000);

  it('renders the run form from the workflow\'s parameter schema; the page\'s and the server\'s field errors sit next to the fields', async () => {
    const schema = {
      type: 'object',
      required: ['folder', 'mode'],
      properties: {
        folder: { type: 'string', minLength: 3, description: 'The folder to clean' },
        keep_days: { type: 'integer', minimum: 1, default: 30, description: 'Files newer than this stay' },
        ratio: { type: 'number', maximum: 1, default: 0.5 },
        dry_run: { type: 'boolean', default: true },
        mode: { enum: ['fast', 'thorough'], description: 'How hard to look' },
        notify: { type: 'object', properties: { email: { type: 'string', format: 'email' } }, default: {} },
      },
      additionalProperties: false,
    };
    const made = await sys.api.post('/workflows', { name: 'Clean a folder', definition: linear([{ type: 'demo.echo', name: 'Clean' }]), parameters: schema }, user.token);
    expect(made.status).toBe(201);
    const wf: string = made.body.data.workflow.id;
    // The list of workflows is read when the page starts.
    await page.reload();
    await page.locator(sel('app')).waitFor({ state: 'visible' });
    await page.locator(`${sel('run-workflow')} option[value="${wf}"]`).waitFor({ state: 'attached' });
    await page.locator(sel('run-workflow')).selectOption(wf);
    await page.locator(sel('run-device')).selectOption(device.id);
    await page.locator(sel('run-fields')).waitFor({ state: 'visible' });
    expect(await page.locator(sel('run-params')).isVisible()).toBe(false);

    const field = (name: string) => page.locator(`${sel('param-field')}[data-name="${name}"]`);
    const input = (name: string) => field(name).locator(sel('param-input'));
    const shown = await page.locator(sel('param-field')).evaluateAll((els) => els.map((e) => {
      const i = e.querySelector('[data-test="param-input"]') as unknown as { tagName: string; type: string; step?: string; value: string; checked?: boolean };
      return {
        name: e.getAttribute('data-name'), tag: i.tagName.toLowerCase(), type: i.type, step: i.step ?? '',
        value: i.type === 'checkbox' ? i.checked : i.value,
        required: e.querySelector('[data-test="param-required"]') !== null,
        description: e.querySelector('[data-test="param-description"]')?.textContent ?? null,
      };
    }));
    // The required fields first (as `required` lists them), then the others by name: the stored
    // schema does not keep the order its properties were written in.
    expect(shown).toEqual([
      { name: 'folder', tag: 'input', type: 'text', step: '', value: '', required: true, description: 'The folder to clean' },
      { name: 'mode', tag: 'select', type: 'select-one', step: '', value: '', required: true, description: 'How hard to look' },
      { name: 'dry_run', tag: 'input', type: 'checkbox', step: '', value: true, required: false, description: null },
      { name: 'keep_days', tag: 'input', type: 'number', step: '1', value: '30', required: false, description: 'Files newer than this stay' },
      { name: 'notify', tag: 'textarea', type: 'textarea', step: '', value: '{}', required: false, description: null },
      { name: 'ratio', tag: 'input', type: 'number', step: 'any', value: '0.5', required: false, description: null },
    ]);
    expect(await input('mode').locator('option').allInnerTexts()).toEqual(['choose\u2026', 'fast', 'thorough']);

    const posts: string[] = [];
    const onRequest = (req: { url(): string; method(): string }) => {
      if (req.method() === 'POST' && new URL(req.url()).pathname === '/api/v1/tasks') posts.push(req.url());
    };
    page.on('request', onRequest);
    const errorsShown = () => page.locator(sel('param-field')).evaluateAll((els) => Object.fromEntries(els
      .map((e) => [e.getAttribute('data-name'), e.querySelector('[data-test="param-error"]')?.textContent ?? ''])
      .filter(([, t]) => t)));

    // The page's own checks: type and required, the field named; nothing is sent.
    await input('keep_days').fill('1.5');
    await page.locator(sel('run-submit')).click();
    await waitText('run-error', (t) => t !== '', 'the form error');
    expect(await errorsShown()).toEqual({ folder: 'folder: is required', keep_days: 'keep_days: must be an integer', mode: 'mode: is required' });
    expect(posts).toEqual([]);

    // The server's checks (minLength, minimum, format): its 400 names the fields, shown next to them.
    const tasksBefore = (await sys.api.get('/tasks?page_size=100', user.token)).body.data.list.length;
    await input('folder').fill('ab');
    await input('keep_days').fill('0');
    await input('mode').selectOption({ label: 'fast' });
    await input('notify').fill('{"email": "not an address"}');
    await page.locator(sel('run-submit')).click();
    await eventually(async () => posts.length === 1 && Object.keys(await errorsShown()).length > 0, 10_000, 'the server\'s field errors');
    const server = await errorsShown();
    expect(Object.keys(server).sort()).toEqual(['folder', 'keep_days', 'notify']);
    expect(server.folder).toMatch(/^folder: .*3/);
    expect(server.keep_days).toMatch(/^keep_days: .*1/);
    expect(server.notify).toMatch(/^notify: email .*email/);
    expect(await text('run-error')).toMatch(/^Could not start: /);
    expect((await sys.api.get('/tasks?page_size=100', user.token)).body.data.list.length).toBe(tasksBefore);
    expect(await field('folder').locator(sel('param-input')).getAttribute('aria-invalid')).toBe('true');

    // Good values start the run: what was typed, and the defaults of what was left empty.
    await input('folder').fill('C:/tmp');
    await input('keep_days').fill('7');
    await input('ratio').fill('');
    await input('dry_run').uncheck();
    await input('mode').selectOption({ label: 'thorough' });
    await input('notify').fill('{"email": "me@example.com"}');
    const previous = (await state()).taskId;
    await page.locator(sel('run-submit')).click();
    const started = await eventually(async () => {
      const s = await state();
      return s.taskId && s.taskId !== previous && s.taskId;
    }, 10_000, 'the new run opened');
    page.off('request', onRequest);
    expect(posts.length).toBe(2);
    expect(await errorsShown()).toEqual({});
    const stored = await sys.api.get(`/tasks/${started}`, user.token);
    expect(stored.body.data.task.workflow_id).toBe(wf);
    expect(stored.body.data.task.parameters).toEqual({
      folder: 'C:/tmp', keep_days: 7, ratio: schema.properties.ratio.default, dry_run: false, mode: 'thorough', notify: { email: 'me@example.com' },
    });
    mkdirSync(ARTIFACTS, { recursive: true });
    await page.screenshot({ path: resolve(ARTIFACTS, 'monitor-run-form.png'), fullPage: true });
  }, 60_000);

  it('logs out: the tokens are gone and the session is revoked', async () => {
    const stored = await page.evaluate(() => JSON.parse(sessionStorage.getItem('jarvis.monitor.auth') ?? 'null'));
    await page.locator(sel('btn-logout')).click();
    await page.locator(sel('login-view')).waitFor({ state: 'visible' });
    expect(await page.evaluate(() => sessionStorage.getItem('jarvis.monitor.auth'))).toBeNull();
    expect((await sys.api.get('/auth/me', stored.access_token)).status).toBe(401);
    expect(pageErrors).toEqual([]);
  }, 30_000);
});
