/**
 * The dashboard in a real headless Chromium (Debian's /usr/bin/chromium, driven by playwright-core) against the
 * shared `mist up --demo` run (tests/support/demo-run.ts): the landing page shows the agents and their devices;
 * the demo jobs appear and reach Succeeded live, without a reload; the job detail draws the plan and a
 * predicted-vs-measured chart; plan history filters and compares. Screenshots go to artifacts/browser/.
 */
import assert from 'node:assert/strict';
import { mkdirSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { chromium, type Browser, type BrowserContext, type Page } from 'playwright-core';
import { repoRoot } from '../support/paths.js';
import { sharedDemo, type DemoRun } from '../support/demo-run.js';

export const CHROMIUM = process.env.MIST_CHROMIUM || '/usr/bin/chromium';
export const CHROMIUM_ARGS = ['--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run', '--disable-background-networking', '--disable-component-update', '--disable-sync'];
const shots = join(repoRoot, 'artifacts', 'browser');
// page-side callbacks run in Chromium; this project compiles without the DOM lib
// eslint-disable-next-line @typescript-eslint/no-explicit-any
declare const document: any;

describe('browser: the dashboard against mist up --demo', function () {
  this.timeout(15 * 60_000);
  let demo: DemoRun;
  let browser: Browser;
  let context: BrowserContext;
  let page: Page;
  let profile: string;
  let navigations = 0;
  const pageErrors: string[] = [];

  before(async () => {
    mkdirSync(shots, { recursive: true });
    demo = await sharedDemo();
    profile = mkdtempSync(join(tmpdir(), 'mist-chromium-'));
    context = await chromium.launchPersistentContext(profile, { executablePath: CHROMIUM, args: CHROMIUM_ARGS, headless: true, viewport: { width: 1440, height: 900 } });
    browser = context.browser() as Browser;
    page = context.pages()[0] ?? (await context.newPage());
    page.on('pageerror', (e) => pageErrors.push(e.message));
    page.on('framenavigated', (f) => {
      if (f === page.mainFrame()) navigations++;
    });
  });

  after(async () => {
    await context?.close().catch(() => {});
    void browser;
    if (profile) rmSync(profile, { recursive: true, force: true });
  });

  it('the landing page shows the agents and their devices', async () => {
    await page.goto(demo.dashboard, { waitUntil: 'load' });
    // ?token= was traded for the HttpOnly cookie and dropped from the URL
    assert.ok(!page.url().includes('token='), page.url());
    const cookies = await context.cookies();
    const c = cookies.find((x) => x.name === 'mist_token');
    assert.ok(c && c.httpOnly, 'the session cookie is HttpOnly');
    await page.waitForFunction(() => document.querySelectorAll('[data-testid="agents-table"] tbody tr td:first-child').length >= 2 && /local-1/.test(document.body.innerText), undefined, { timeout: 60_000 });
    const agents = await page.$$eval('[data-testid="agents-table"] tbody tr', (rows: any[]) => rows.map((r: any) => Array.from(r.querySelectorAll('td')).map((td: any) => td.textContent?.trim() ?? '')));
    const names = agents.map((r) => r[0]).sort();
    assert.deepEqual(names, ['local-1', 'local-2']);
    for (const r of agents) {
      assert.equal(r[1], 'healthy');
      assert.equal(r[4], '2', `each agent has 2 devices: ${r.join(' | ')}`);
    }
    const totals = await page.textContent('[data-testid="device-totals"]');
    assert.match(totals ?? '', /devices\s*4/);
    assert.match((await page.textContent('[data-testid="types-table"]')) ?? '', /cpu/);
    await page.screenshot({ path: join(shots, 'overview-agents.png'), fullPage: true });
  });

  it('the demo jobs appear and reach Succeeded live, without a reload', async () => {
    const before = navigations;
    // both jobs listed (the LVM job is submitted after the LLM job ends)
    await page.waitForFunction(() => /tiny-llm-\d+/.test(document.querySelector('[data-testid="jobs-table"]')?.textContent ?? ''), undefined, { timeout: 120_000 });
    // the page must see at least one demo job before it succeeded, or the test proves nothing about live updates
    const phasesAtStart = await page.$$eval('[data-testid="jobs-table"] tbody tr', (rows: any[]) => rows.map((r: any) => r.textContent ?? ''));
    const lvmSeen = phasesAtStart.some((t) => /tiny-lvm-\d+/.test(t));
    const notDone = phasesAtStart.filter((t) => /tiny-(llm|lvm)-\d+/.test(t) && !/Succeeded/.test(t)).length + (lvmSeen ? 0 : 1);
    assert.ok(notDone >= 1, `the demo jobs had already succeeded when the page loaded: ${phasesAtStart.join(' / ')}`);
    await page.waitForFunction(
      () => {
        const rows = Array.from(document.querySelectorAll('[data-testid="jobs-table"] tbody tr'));
        const ok = rows.filter((r: any) => /tiny-(llm|lvm)-\d+/.test(r.textContent ?? '') && /Succeeded/.test(r.textContent ?? ''));
        return ok.length >= 2;
      },
      undefined,
      { timeout: 12 * 60_000, polling: 500 },
    );
    assert.equal(navigations, before, 'no reload or navigation happened while the jobs ran');
    const text = await page.evaluate(() => document.body.innerText);
    assert.ok((text.match(/Succeeded/g) ?? []).length >= 2);
    const live = await page.textContent('#live-status');
    assert.equal(live?.trim(), 'live');
    await page.screenshot({ path: join(shots, 'overview-succeeded.png'), fullPage: true });
  });

  it('the job detail draws the plan (stages × layers) and a predicted-vs-measured chart', async () => {
    const summary = await demo.summary();
    const llm = summary.jobs.find((j) => j.kind === 'llm')!;
    await page.click(`[data-testid="jobs-table"] a[href="#/jobs/${llm.name}"]`);
    await page.waitForFunction(() => document.querySelectorAll('[data-testid="plan-stage"]').length >= 1, undefined, { timeout: 30_000 });
    await page.waitForFunction(() => document.querySelector('[data-testid="chart-step"] .uplot canvas') !== null, undefined, { timeout: 30_000 });
    const stages = await page.$$eval('[data-testid="plan-stage"]', (rows: any[]) => rows.map((r: any) => r.textContent ?? ''));
    for (const s of stages) assert.match(s, /dp \d+.*tp \d+.*ZeRO-\d.*ckpt .*offload/);
    const legend = await page.textContent('[data-testid="chart-step"]');
    assert.match(legend ?? '', /measured/);
    assert.match(legend ?? '', /predicted/);
    // the loss curve, the per-rank profiles and the events are there too
    assert.ok(await page.$('[data-testid="chart-loss"] .uplot canvas'));
    await page.waitForFunction(() => (document.querySelector('[data-testid="ranks"]')?.querySelectorAll('tbody tr td.num').length ?? 0) >= 1, undefined, { timeout: 30_000 });
    assert.match((await page.textContent('[data-testid="events"]')) ?? '', /Submitted/);
    assert.match((await page.textContent('[data-testid="conditions"]')) ?? '', /\w/);
    await page.screenshot({ path: join(shots, 'job-detail.png'), fullPage: true });
  });

  it('plan history filters, sorts and compares two plans side by side; a plan shows its Pareto frontier', async () => {
    const summary = await demo.summary();
    const [llm, lvm] = [summary.jobs.find((j) => j.kind === 'llm')!, summary.jobs.find((j) => j.kind === 'lvm')!];
    await page.click('nav a[data-page="plans"]');
    await page.waitForFunction(() => document.querySelectorAll('[data-testid="plans-table"] tbody tr[data-key]').length >= 2, undefined, { timeout: 30_000 });
    await page.fill('[data-testid="plan-filter"]', llm.name);
    await page.waitForFunction((id) => {
      const keys = Array.from(document.querySelectorAll('[data-testid="plans-table"] tbody tr[data-key]')).map((r: any) => r.getAttribute('data-key'));
      return keys.length === 1 && keys[0] === id;
    }, llm.planId);
    await page.fill('[data-testid="plan-filter"]', '');
    await page.selectOption('[data-testid="plan-sort"]', 'iterationSeconds');
    await page.waitForFunction(() => document.querySelectorAll('[data-testid="plans-table"] tbody tr[data-key]').length >= 2);
    await page.check(`[data-testid="plans-table"] tr[data-key="${llm.planId}"] [data-testid="compare-box"]`);
    await page.check(`[data-testid="plans-table"] tr[data-key="${lvm.planId}"] [data-testid="compare-box"]`);
    await page.waitForSelector('[data-testid="compare-table"]', { timeout: 30_000 });
    const cmp = await page.$$eval('[data-testid="compare-table"] tbody tr', (rows: any[]) => rows.map((r: any) => Array.from(r.querySelectorAll('td')).map((td: any) => td.textContent ?? '')));
    const model = cmp.find((r) => r[0] === 'model');
    assert.ok(model && model[1] !== model[2], `the two models differ: ${JSON.stringify(model)}`);
    assert.ok(cmp.some((r) => r[0] === 'predicted s/step'));
    await page.screenshot({ path: join(shots, 'plan-compare.png'), fullPage: true });
    await page.click(`[data-testid="plans-table"] a[href="#/plans/${encodeURIComponent(llm.planId)}"]`);
    await page.waitForSelector('[data-testid="pareto"] circle', { timeout: 30_000 });
    assert.ok((await page.$$('[data-testid="pareto"] circle.chosen')).length >= 1, 'the chosen point is marked');
    await page.screenshot({ path: join(shots, 'plan-decision.png'), fullPage: true });
    await page.click('nav a[data-page="tuner"]');
    await page.waitForFunction(() => document.querySelectorAll('[data-testid="tuner-table"] tbody tr').length >= 2, undefined, { timeout: 30_000 });
    await page.screenshot({ path: join(shots, 'tuner.png'), fullPage: true });
    assert.deepEqual(pageErrors, [], 'no uncaught errors in the page');
  });
});
