// dashboard_check.mjs -- loads kitgate's dashboard in Debian's headless Chromium (playwright-core,
// no browser download) and checks what it shows against the live broker: kits online with last
// seen, accepted/rejected counts, stream averages, recent rejections, the client-id lookup, and the
// "send test measurement" button (its row must appear on the page; the caller checks PostgreSQL).
// Usage: node dashboard_check.mjs <url> <user> <password> <screenshot dir>
// Prints PASS:/FAIL: lines and, last, `TESTID <uuid>` of the test measurement it sent.
import { chromium } from 'playwright-core';

const [url, user, password, shots] = process.argv.slice(2);
let failed = 0;
const pass = (m) => console.log(`PASS: ${m}`);
const fail = (m) => { failed++; console.log(`FAIL: ${m}`); };
async function check(name, fn) {
  try { await fn(); pass(name); } catch (e) { fail(`${name}: ${String(e.message || e).split('\n')[0]}`); }
}

const browser = await chromium.launch({
  executablePath: process.env.CHROMIUM || '/usr/bin/chromium',
  args: ['--no-sandbox', '--disable-gpu', '--disable-dev-shm-usage'],
});
try {
  const ctx = await browser.newContext({ httpCredentials: { username: user, password }, viewport: { width: 1280, height: 1000 } });
  const page = await ctx.newPage();
  const errors = [];
  page.on('pageerror', (e) => errors.push(String(e)));
  await page.goto(url);

  await check('live over server-sent events', () => page.locator('[data-testid=conn]', { hasText: 'live' }).waitFor({ timeout: 10000 }));
  const api = async (p) => (await ctx.request.get(new URL(p, url).href)).json();

  await check('kit k-test-0001 listed online with last seen and accepted count', async () => {
    const row = page.locator('#kits tbody tr[data-serial="k-test-0001"]');
    await row.locator('.badge.on', { hasText: 'online' }).waitFor({ timeout: 10000 });
    const cells = await row.locator('td').allTextContents();
    if (!/ago/.test(cells[3])) throw new Error(`last seen "${cells[3]}"`);
    if (!(+cells[4] > 0)) throw new Error(`accepted "${cells[4]}"`);
  });
  await check('offline kit shown offline', () =>
    page.locator('#kits tbody tr[data-serial="k-test-0009"] .badge.off', { hasText: 'offline' }).waitFor({ timeout: 10000 }));
  await check('rejected counts by reason', async () => {
    await page.locator('#reasons tr', { hasText: 'bad_value' }).locator('td.off').waitFor({ timeout: 10000 });
  });
  await check('recent rejections show reason and detail', () =>
    page.locator('#rejections tbody tr', { hasText: 'bad_value' }).filter({ hasText: 'value' }).first().waitFor({ timeout: 10000 }));
  await check('sink health shown', async () => {
    const t = await page.locator('[data-testid=sink]').textContent();
    if (!/postgres connected/.test(t)) throw new Error(t);
  });

  await page.locator('#kits tbody tr[data-serial="k-test-0001"]').click();
  await check('stream table: latest and 1/5/30-minute averages match the API', async () => {
    const row = page.locator('#streams tbody tr[data-topic="kit/k-test-0001/stats/11/1"]');
    await row.waitFor({ timeout: 10000 });
    const kit = await api('api/v1/kits/k-test-0001');
    const s = kit.streams.find((x) => x.topic === 'kit/k-test-0001/stats/11/1');
    const cells = await row.locator('td').allTextContents();
    const near = (txt, v) => Math.abs(parseFloat(txt) - v) < 0.01 + Math.abs(v) * 0.05;
    if (!near(cells[4], s.avg_5min) || !near(cells[5], s.avg_30min)) throw new Error(`${cells} vs ${JSON.stringify(s)}`);
  });
  await check('chart drawn with uPlot', () => page.locator('#chart .uplot canvas').waitFor({ timeout: 10000 }));
  await page.waitForTimeout(2500); // a few more points on the chart
  await page.screenshot({ path: `${shots}/dashboard.png`, fullPage: true });

  // the test button
  const form = page.locator('[data-testid=test-form]');
  await form.locator('input[name=serial]').fill('k-test-0007');
  await form.locator('input[name=peripheral]').fill('71');
  await form.locator('input[name=quantityType]').fill('1');
  await form.locator('input[name=value]').fill('42.25');
  await page.locator('[data-testid=send-test]').click();
  let id = '';
  await check('test measurement accepted', async () => {
    await page.locator('[data-testid=test-result].ok', { hasText: 'accepted' }).waitFor({ timeout: 10000 });
    id = await page.locator('[data-testid=test-result]').getAttribute('data-id');
  });
  await check('test measurement arrives on the page (kit row and stream latest value)', async () => {
    await page.locator('#kits tbody tr[data-serial="k-test-0007"]').click({ timeout: 10000 });
    await page.locator('#streams tbody tr[data-topic="kit/k-test-0007/stats/71/1"] td', { hasText: '42.25' }).first().waitFor({ timeout: 10000 });
  });
  await form.locator('input[name=serial]').fill('k-test-0007');
  await form.locator('input[name=peripheral]').fill('0');
  await page.locator('[data-testid=send-test]').click();
  await check('invalid test measurement shows the broker reason', async () => {
    const res = page.locator('[data-testid=test-result].err');
    await res.waitFor({ timeout: 10000 });
    const t = await res.textContent();
    if (!/^422 bad_type \(peripheral\)/.test(t)) throw new Error(t);
  });

  await page.locator('#lookup-form input[name=cid]').fill('dash-kit1');
  await page.locator('[data-testid=lookup]').click();
  await check('client-id lookup', async () => {
    const res = page.locator('[data-testid=lookup-result]', { hasText: 'dash-kit1' });
    await res.waitFor({ timeout: 10000 });
    const t = await res.textContent();
    if (!t.startsWith('dash-kit1 → kit k-test-0001, online')) throw new Error(t);
  });

  // a phone
  const phone = await browser.newContext({ httpCredentials: { username: user, password }, viewport: { width: 390, height: 844 }, isMobile: true, hasTouch: true, deviceScaleFactor: 2 });
  const pp = await phone.newPage();
  await pp.goto(url);
  await check('usable on a phone (no horizontal page overflow)', async () => {
    await pp.locator('[data-testid=conn]', { hasText: 'live' }).waitFor({ timeout: 10000 });
    await pp.locator('#kits tbody tr').first().waitFor({ timeout: 10000 });
    const w = await pp.evaluate(() => [document.documentElement.scrollWidth, window.innerWidth]);
    if (w[0] > w[1] + 1) throw new Error(`page is ${w[0]} px wide in a ${w[1]} px viewport`);
  });
  await pp.waitForTimeout(1000);
  await pp.screenshot({ path: `${shots}/dashboard-phone.png`, fullPage: false });
  if (errors.length) fail(`page errors: ${errors.join('; ')}`); else pass('no JavaScript errors');
  console.log(`TESTID ${id}`);
} finally {
  await browser.close();
}
process.exit(failed ? 1 : 0);
