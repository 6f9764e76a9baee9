// A headless "browser" for the tests: follows oidc-provider's devInteractions
// pages with a cookie jar and submits their forms, as a person would.
//   node browser.mjs URL                 authorization code: ends by calling the loopback redirect
//   node browser.mjs --device URI CODE   device flow: enters the user code, logs in, approves
//   node browser.mjs --forge-state URL   calls the loopback redirect with a code and a state of its own
// Logs each step (paths only) to $OIDC_BROWSER_LOG when set.
import fs from 'node:fs';

const log = (line) => process.env.OIDC_BROWSER_LOG && fs.appendFileSync(process.env.OIDC_BROWSER_LOG, `${line}\n`);
const jar = new Map();
const account = process.env.OIDC_LOGIN || 'alice';
const refuse = process.env.OIDC_DENY === '1';

function cookieHeader() {
  return [...jar].map(([k, v]) => `${k}=${v}`).join('; ');
}
function keepCookies(res) {
  for (const c of res.headers.getSetCookie?.() ?? []) {
    const [pair] = c.split(';');
    const i = pair.indexOf('=');
    jar.set(pair.slice(0, i), pair.slice(i + 1));
  }
}
function forms(html) {
  const out = [];
  for (const m of html.matchAll(/<form([^>]*)>([\s\S]*?)<\/form>/g)) {
    const action = /action="([^"]*)"/.exec(m[1])?.[1];
    const id = /id="([^"]*)"/.exec(m[1])?.[1];
    const fields = {};
    for (const i of m[2].matchAll(/<input([^>]*)>/g)) {
      const name = /name="([^"]*)"/.exec(i[1])?.[1];
      const value = /value="([^"]*)"/.exec(i[1])?.[1] ?? '';
      if (name) fields[name] = value.replace(/&amp;/g, '&');
    }
    out.push({ action: action?.replace(/&amp;/g, '&'), id, fields });
  }
  return out;
}

async function go(url, userCode) {
  let method = 'GET';
  let body;
  for (let step = 0; step < 25; step += 1) {
    const target = new URL(url);
    log(`${method} ${target.pathname}`);
    const res = await fetch(url, {
      method,
      body,
      redirect: 'manual',
      headers: {
        cookie: cookieHeader(),
        ...(body ? { 'content-type': 'application/x-www-form-urlencoded' } : {}),
      },
    });
    keepCookies(res);
    if (res.status >= 300 && res.status < 400) {
      url = new URL(res.headers.get('location'), url).toString();
      method = 'GET';
      body = undefined;
      continue;
    }
    const html = await res.text();
    if (new URL(url).hostname === '127.0.0.1') {
      log(`redirect delivered: ${res.status}`);
      return;
    }
    const form = forms(html).find((f) => f.action && !/abort/.test(f.action) && f.id !== 'op.deviceInputForm') ?? forms(html).find((f) => f.action);
    if (!form) {
      log(`done: ${res.status} ${html.includes('Sign-in Success') || html.includes('success') ? 'success' : 'no form'}`);
      return;
    }
    const fields = { ...form.fields };
    if ('login' in fields || /\/login$/.test(form.action)) {
      fields.login = account;
      fields.password = 'any';
    }
    if ('user_code' in fields) fields.user_code = userCode;
    const abort = /href="([^"]*\/abort)"/.exec(html)?.[1];
    if (refuse && abort) {
      // The person clicks [ Cancel ]: the provider redirects with error=access_denied.
      url = new URL(abort.replace(/&amp;/g, '&'), url).toString();
      method = 'GET';
      body = undefined;
      continue;
    }
    url = new URL(form.action, url).toString();
    method = 'POST';
    body = new URLSearchParams(fields).toString();
  }
  throw new Error('too many steps');
}

const args = process.argv.slice(2);
if (args[0] === '--forge-state') {
  const redirect = new URL(args[1]).searchParams.get('redirect_uri');
  const res = await fetch(`${redirect}?code=forged-code&state=forged-state`);
  log(`forged redirect: ${res.status}`);
} else if (args[0] === '--device') {
  await go(args[1], args[2]);
} else {
  await go(args[0]);
}
