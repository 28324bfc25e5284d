// Log in to the Argo CD UI in headless Chromium as a person does, and read the applications list.
//
//   node argocd_ui_login.cjs URL USERNAME PASSWORD SCREENSHOT.png
//
// playwright-core (from npm, found through NODE_PATH) drives Debian's chromium
// ($CHROMIUM, default /usr/bin/chromium) with a fresh profile. Prints one JSON
// line: {"login_url", "url", "applications": [titles]}; the screenshot is of the
// applications list once every application tile is shown. Used by
// tests/e2e/kind/test_kind_argocd_ui.py.
'use strict';

const fs = require('fs');
const os = require('os');
const path = require('path');
const {chromium} = require('playwright-core');

const TIMEOUT_MS = 180000;

async function main() {
    const [url, username, password, screenshot] = process.argv.slice(2);
    if (!screenshot) {
        throw new Error('usage: node argocd_ui_login.cjs URL USERNAME PASSWORD SCREENSHOT.png');
    }
    const profile = fs.mkdtempSync(path.join(os.tmpdir(), 'argocd-ui-chromium-'));
    const context = await chromium.launchPersistentContext(profile, {
        executablePath: process.env.CHROMIUM || '/usr/bin/chromium',
        headless: true,
        viewport: {width: 1440, height: 900},
        args: ['--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run', '--disable-background-networking',
               '--disable-component-update', '--disable-sync'],
    });
    try {
        const page = context.pages()[0] || (await context.newPage());
        page.setDefaultTimeout(TIMEOUT_MS);
        await page.goto(url);
        // the UI sends a visitor without a session to its login form
        await page.waitForSelector('input[name="username"]');
        const loginUrl = page.url();
        await page.fill('input[name="username"]', username);
        await page.fill('input[name="password"]', password);
        await page.click('button[type="submit"]');
        const titles = page.locator('.applications-list__title');
        await titles.first().waitFor();
        // every tile, and their health, drawn before the picture is taken
        await page.waitForFunction(() => document.querySelectorAll('.applications-list__title').length >= 3);
        await page.waitForSelector('[qe-id="applications-tiles-health-status"]');
        const applications = (await titles.allInnerTexts()).map(t => t.trim());
        await page.screenshot({path: screenshot, fullPage: true});
        process.stdout.write(JSON.stringify({login_url: loginUrl, url: page.url(), applications}) + '\n');
    } finally {
        await context.close();
        fs.rmSync(profile, {recursive: true, force: true});
    }
}

main().catch(err => {
    process.stderr.write(`argocd_ui_login: ${err && err.stack ? err.stack : err}\n`);
    process.exit(1);
});
