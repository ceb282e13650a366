// Loads the health agent's dashboard in headless Chromium and watches it.
//
//   node dashboard_check.mjs URL REGION SCREENSHOT_DIR
//
// Prints "READY" once the page shows three regions, all up (the C test then
// kills REGION's relays), then waits until REGION's card turns down and red,
// saves screenshots (before.png, after.png) and exits 0. Any failure exits 1
// with the reason. Chromium is Debian's (/usr/bin/chromium, or $CHROMIUM).
import { chromium } from "playwright-core";

const [url, region, outDir] = process.argv.slice(2);
const exe = process.env.CHROMIUM || "/usr/bin/chromium";
const fail = (msg) => { console.error("FAIL " + msg); process.exit(1); };
if (!url || !region || !outDir) fail("usage: dashboard_check.mjs URL REGION SCREENSHOT_DIR");

const browser = await chromium.launch({
  executablePath: exe,
  headless: true,
  // Root in a container: Chromium's sandbox cannot start there.
  args: ["--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage"],
}).catch((e) => fail(`cannot start ${exe}: ${e.message}`));

try {
  const page = await browser.newPage({ viewport: { width: 1280, height: 900 } });
  const errors = [];
  page.on("pageerror", (e) => errors.push(e.message));
  await page.goto(url, { waitUntil: "load", timeout: 15000 });
  await page.waitForFunction(() => {
    const cards = document.querySelectorAll(".region");
    return cards.length === 3 && [...cards].every((c) => c.dataset.state === "up");
  }, null, { timeout: 20000, polling: 200 });
  // Latency charts have data once a few probes are in.
  await page.waitForFunction(() => document.querySelectorAll(".ep svg path[d^='M']").length >= 3,
                             null, { timeout: 20000, polling: 200 });
  await page.screenshot({ path: `${outDir}/dashboard-before.png`, fullPage: true });
  console.log("READY");

  const t0 = Date.now();
  await page.waitForFunction((r) => {
    const card = document.querySelector(`.region[data-region="${r}"]`);
    return card && card.dataset.state === "down";
  }, region, { timeout: 20000, polling: 100 });
  const seconds = (Date.now() - t0) / 1000;
  const card = page.locator(`.region[data-region="${region}"]`);
  const border = await card.evaluate((el) => getComputedStyle(el).borderTopColor);
  if (border !== "rgb(229, 72, 77)") fail(`down region's border is ${border}, not red`);
  const others = await page.$$eval(".region", (cs) => cs.filter((c) => c.dataset.state === "up").length);
  if (others !== 2) fail(`expected the two other regions up, got ${others}`);
  // The DNS table sends the region's clients to the next region, and the
  // timeline lists the transition, the decision and the lease holder's write
  // ("agent-X wrote DNS: ..." when another agent holds the lease).
  await page.waitForFunction((r) => {
    const row = document.querySelector(`#dns tr[data-geo="${r}"]`);
    return row && !row.children[1].textContent.includes(r) &&
      /region .* is down/.test(document.getElementById("events").textContent) &&
      /DNS should answer/.test(document.getElementById("events").textContent) &&
      /(wrote DNS|DNS): eu-west=127\.2\.0\.1/.test(document.getElementById("events").textContent);
  }, region, { timeout: 10000, polling: 200 });
  await page.screenshot({ path: `${outDir}/dashboard-after.png`, fullPage: true });
  if (errors.length) fail("page errors: " + errors.join("; "));
  console.log(`DOWN ${region} red after ${seconds.toFixed(2)} s`);
} catch (e) {
  fail(e.message);
} finally {
  await browser.close();
}
