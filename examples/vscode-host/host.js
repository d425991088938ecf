#!/usr/bin/env node
// host.js — a VS Code-style host for authbridge over vscode-jsonrpc: external tokens, refresh answers, a thread and one streamed turn.
'use strict';

const fs = require('node:fs');
const os = require('node:os');
const path = require('node:path');
const { spawnAuthbridge } = require('@authbridge/protocol');
const lib = require('./lib');

/** Deadline for each request/answer step, and for the whole turn. */
const STEP_MS = 10_000;
const TURN_MS = 30_000;
/** The server exits within 2 s of its stdin closing (protocol §7); allow some slack. */
const EXIT_MS = 5_000;

const USAGE = `usage: node host.js [--mock-url URL] [--input TEXT] | --print-refresh-token | --help
  --mock-url URL         the mock provider's base URL (or env AUTHBRIDGE_MOCK_URL); the server gets
                         --home <temp dir> and -c overrides pointing the openai provider at it
  --input TEXT           the turn's input (default "Say hello")
  --print-refresh-token  print the token this host answers refreshes with, and exit
server command: AUTHBRIDGE_CMD_JSON (JSON array), else AUTHBRIDGE_CMD (split on whitespace), else authbridge`;

/**
 * @param {string[]} argv
 * @returns {{mockUrl: string | undefined, input: string, printRefreshToken: boolean, help: boolean}}
 */
function parseArgs(argv) {
  const opts = { mockUrl: process.env.AUTHBRIDGE_MOCK_URL || undefined, input: 'Say hello', printRefreshToken: false, help: false };
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i];
    const value = () => {
      const v = argv[++i];
      if (v === undefined) throw new Error(`${arg} needs a value\n${USAGE}`);
      return v;
    };
    if (arg === '--mock-url') opts.mockUrl = value();
    else if (arg === '--input') opts.input = value();
    else if (arg === '--print-refresh-token') opts.printRefreshToken = true;
    else if (arg === '--help' || arg === '-h') opts.help = true;
    else throw new Error(`unknown argument ${arg}\n${USAGE}`);
  }
  return opts;
}

/**
 * Runs one session; resolves to the summary printed as the last stdout line.
 * @param {{mockUrl: string | undefined, input: string}} opts
 */
async function run(opts) {
  const [program, ...args] = lib.serverCommand(process.env);
  const home = fs.mkdtempSync(path.join(os.tmpdir(), 'authbridge-vscode-host-'));
  if (opts.mockUrl === undefined) {
    process.stderr.write('vscode-host: no --mock-url: running the server command as given, without --home or -c\n');
  }

  /** @type {Record<string, string>} */
  const config = {};
  if (opts.mockUrl !== undefined) {
    for (const key of ['base_url', 'chatgpt_base_url']) config[`model_providers.openai.${key}`] = opts.mockUrl;
  }
  const server = spawnAuthbridge({
    command: program,
    args,
    home: opts.mockUrl !== undefined ? home : undefined,
    config,
    requestTimeoutMs: STEP_MS,
  });
  let closing = false;
  /** @type {Promise<never>} rejects when the server goes away before we close its stdin */
  const serverGone = new Promise((_resolve, reject) => {
    server.process.on('error', (e) => reject(new Error(`could not start ${program}: ${lib.errorText(e)}`)));
    server.process.on('exit', (code, signal) => {
      if (!closing) reject(new Error(`the server exited early (code ${code}, signal ${signal})`));
    });
  });
  serverGone.catch(() => {});

  /** @type {import('@authbridge/protocol').ChatgptAuthTokensRefreshParams[]} */
  const refreshes = [];
  /** @type {string[]} every notification's method, in order */
  const notifications = [];
  let streamed = '';
  server.onAnyNotification((method) => notifications.push(method));
  server.onNotification('item/agentMessage/delta', (n) => {
    streamed += n.delta;
    process.stdout.write(n.delta);
  });
  // The one thing a host must do for the 401 healing: answer the refresh with fresh tokens.
  server.onRefresh((params) => {
    refreshes.push(params);
    const accountId = params.previousAccountId ?? lib.ACCOUNT_ID;
    process.stderr.write(`vscode-host: refresh asked (${params.reason}); answering for ${accountId}\n`);
    return { accessToken: lib.refreshedToken(accountId), chatgptAccountId: accountId, chatgptPlanType: lib.PLAN_TYPE };
  });

  try {
    const hello = await Promise.race([
      server.initialize({ name: 'vscode-host-example', title: 'authbridge VS Code-style host', version: '0.1.0' }),
      serverGone,
    ]);
    process.stderr.write(`vscode-host: connected to ${hello.serverInfo.name} ${hello.serverInfo.version}\n`);

    const loginCompleted = next(server, 'account/login/completed');
    const loggedIn = await server.request('account/login/start', {
      type: 'chatgptAuthTokens', accessToken: lib.loginToken(), chatgptAccountId: lib.ACCOUNT_ID, chatgptPlanType: lib.PLAN_TYPE,
    });
    if (loggedIn.type !== 'chatgptAuthTokens') throw new Error(`login answered ${JSON.stringify(loggedIn)}`);
    const completed = await lib.withDeadline(loginCompleted, STEP_MS, 'account/login/completed');
    if (!completed.success) throw new Error(`login failed: ${completed.error}`);

    const { thread } = await server.request('thread/start', {});
    const turnCompleted = next(server, 'turn/completed');
    await server.request('turn/start', { threadId: thread.id, input: [{ type: 'text', text: opts.input, text_elements: [] }] });
    const done = await lib.withDeadline(Promise.race([turnCompleted, serverGone]), TURN_MS, 'the turn');
    process.stdout.write('\n');
    const { status, error, items } = done.turn;
    if (status === 'failed') throw new Error(`the turn failed: ${error?.message}`);
    if (status !== 'completed') throw new Error(`the turn ended ${status}`);
    const text = items.map((item) => (item.type === 'agentMessage' ? item.text : '')).join('');
    if (text !== streamed) throw new Error(`turn/completed text ${JSON.stringify(text)} differs from the stream ${JSON.stringify(streamed)}`);
  } catch (e) {
    server.process.kill();
    fs.rmSync(home, { recursive: true, force: true });
    throw e;
  }

  // End the session the way the protocol says: close the server's stdin, wait for it to exit.
  closing = true;
  const code = await server.close(EXIT_MS);
  fs.rmSync(home, { recursive: true, force: true });
  if (code !== 0) throw new Error(`the server exited with code ${code} after its stdin closed`);
  return { ok: true, text: streamed, refreshes, notifications, serverExitCode: code };
}

/**
 * The next notification `method` (one host turn at a time, so the next is ours).
 * @template {keyof import('@authbridge/protocol').ServerNotifications} M
 * @param {import('@authbridge/protocol').AuthbridgeClient} server
 * @param {M} method
 * @returns {Promise<import('@authbridge/protocol').ServerNotifications[M]>}
 */
function next(server, method) {
  return new Promise((resolve) => {
    const stop = server.onNotification(method, (params) => {
      stop();
      resolve(params);
    });
  });
}

async function main() {
  const opts = parseArgs(process.argv.slice(2));
  if (opts.help) {
    process.stdout.write(`${USAGE}\n`);
    return;
  }
  if (opts.printRefreshToken) {
    process.stdout.write(`${lib.refreshedToken(lib.ACCOUNT_ID)}\n`);
    return;
  }
  const summary = await run(opts);
  process.stdout.write(`${JSON.stringify(summary)}\n`);
}

main().catch((e) => {
  process.stderr.write(`vscode-host: ${lib.errorText(e)}\n`);
  process.exit(1);
});
