// Log in to Gitea's web UI in headless Chromium as a learner does, open the lab repository and a
// promotion pull request, and read what the page shows.
//
//   node gitea_ui_review.cjs BASE_URL USERNAME PASSWORD OWNER/REPO PR_NUMBER SCREENSHOT_DIR
//
// playwright-core (from npm, found through NODE_PATH) drives Debian's chromium ($CHROMIUM, default
// /usr/bin/chromium) with a fresh profile. Prints one JSON line: {"signed_in_as", "files",
// "styled", "pull_request"}: the files listed on the repository page, whether the page's
// stylesheet applied (the frontend is built in), and the pull request page's text. Screenshots:
// gitea-repository.png and gitea-pull-request.png in SCREENSHOT_DIR. Used by
// tests/e2e/kind/test_kind_gitea_e2e.py.
'use strict';

const fs = require('fs');
const os = require('os');
const path = require('path');
const {chromium} = require('playwright-core');

const TIMEOUT_MS = 120000;

async function main() {
    const [base, username, password, repo, number, shots] = process.argv.slice(2);
    if (!shots) {
        throw new Error('usage: node gitea_ui_review.cjs BASE_URL USERNAME PASSWORD OWNER/REPO PR_NUMBER DIR');
    }
    const profile = fs.mkdtempSync(path.join(os.tmpdir(), 'gitea-ui-chromium-'));
    const context = await chromium.launchPersistentContext(profile, {
        executablePath: process.env.CHROMIUM || '/usr/bin/chromium',
        headless: true,
        viewport: {width: 1440, height: 1000},
        args: ['--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run', '--disable-background-networking',
               '--disable-component-update', '--disable-sync'],
    });
    try {
        const page = context.pages()[0] || (await context.newPage());
        page.setDefaultTimeout(TIMEOUT_MS);
        await page.goto(`${base}/user/login`);
        await page.fill('input[name="user_name"]', username);
        await page.fill('input[name="password"]', password);
        await Promise.all([page.waitForNavigation(), page.click('form button.primary')]);
        const signedInAs = await page.evaluate(() => {
            const meta = document.querySelector('meta[name="_uid"]');
            const avatar = document.querySelector('.user-menu, #navbar .dropdown .avatar, img.avatar');
            return (avatar && (avatar.getAttribute('alt') || avatar.getAttribute('title'))) || (meta ? 'uid' : '');
        });
        await page.goto(`${base}/${repo}`);
        await page.waitForSelector('#repo-files-table');
        const files = (await page.locator('#repo-files-table .repo-file-cell.name, #repo-files-table .name a')
            .allInnerTexts()).map(t => t.trim()).filter(Boolean);
        // Gitea's own stylesheet applied: its navbar is a flex box (unstyled HTML would be a plain block)
        const styled = await page.evaluate(() => {
            const nav = document.querySelector('#navbar');
            return !!nav && getComputedStyle(nav).display === 'flex';
        });
        await page.screenshot({path: path.join(shots, 'gitea-repository.png'), fullPage: true});
        const answer = await page.goto(`${base}/${repo}/pulls/${number}`);
        try {
            // the pull request's title, then its merge box (where the commit statuses are listed)
            await page.waitForSelector('#issue-title-display');
            await page.waitForSelector('.pull-merge-box, .merge-section, .timeline-item.pull-merge-box',
                                       {state: 'attached'});
        } catch (err) {
            await page.screenshot({path: path.join(shots, 'gitea-pull-request-failed.png'), fullPage: true});
            throw new Error(`${err.message}\nHTTP ${answer && answer.status()} at ${page.url()}:\n` +
                            (await page.locator('body').innerText()).slice(0, 3000));
        }
        const pullRequest = await page.locator('body').innerText();
        await page.screenshot({path: path.join(shots, 'gitea-pull-request.png'), fullPage: true});
        process.stdout.write(JSON.stringify({signed_in_as: signedInAs, files, styled, pull_request: pullRequest}) + '\n');
    } finally {
        await context.close();
        fs.rmSync(profile, {recursive: true, force: true});
    }
}

main().catch(err => {
    process.stderr.write(`gitea_ui_review: ${err && err.stack ? err.stack : err}\n`);
    process.exit(1);
});
