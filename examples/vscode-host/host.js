#!/usr/bin/env node
// host.js — a VS Code-style host for authbridge over vscode-jsonrpc: external tokens, refresh answers, a thread and one streamed turn.
'use strict';

const { spawn } = require('node:child_process');
const fs = require('node:fs');
const os = require('node:os');
const path = require('node:path');
const rpc = require('vscode-jsonrpc/node');
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
  if (opts.mockUrl !== undefined) {
    args.push('--home', home);
    for (const key of ['base_url', 'chatgpt_base_url']) {
      args.push('-c', `model_providers.openai.${key}=${opts.mockUrl}`);
    }
  } else {
    process.stderr.write('vscode-host: no --mock-url: running the server command as given, without --home or -c\n');
  }

  const child = spawn(program, args, { stdio: ['pipe', 'pipe', 'inherit'] });
  let closing = false;
  /** @type {Promise<never>} rejects when the server goes away before we close its stdin */
  const serverGone = new Promise((_resolve, reject) => {
    child.on('error', (e) => reject(new Error(`could not start ${program}: ${lib.errorText(e)}`)));
    child.on('exit', (code, signal) => {
      if (!closing) reject(new Error(`the server exited early (code ${code}, signal ${signal})`));
    });
  });
  serverGone.catch(() => {});
  /** @type {Promise<number | null>} the exit code, once the process is gone */
  const exited = new Promise((resolve) => child.on('close', (code) => resolve(code)));

  /** @template T @param {Promise<T>} p @param {number} ms @param {string} what */
  const wait = (p, ms, what) => lib.withDeadline(Promise.race([p, serverGone]), ms, what);

  if (!child.stdout || !child.stdin) throw new Error('the server has no pipes');
  const connection = rpc.createMessageConnection(
    new rpc.StreamMessageReader(child.stdout),
    new rpc.StreamMessageWriter(child.stdin),
  );

  /** @type {import('../../docs/schema/authbridge').ChatgptAuthTokensRefreshParams[]} */
  const refreshes = [];
  /** @type {string[]} every notification's method, in order */
  const notifications = [];
  let streamed = '';
  /** @type {Map<string, (n: import('../../docs/schema/authbridge').TurnNotification) => void>} */
  const turnWaiters = new Map();
  /** @type {Map<string, import('../../docs/schema/authbridge').TurnNotification>} */
  const completedTurns = new Map();
  /** @type {(n: import('../../docs/schema/authbridge').AccountLoginCompletedNotification) => void} */
  let onLoginCompleted = () => {};
  const loginCompleted = new Promise((resolve) => { onLoginCompleted = resolve; });

  connection.onRequest('account/chatgptAuthTokens/refresh', (/** @type {import('../../docs/schema/authbridge').ChatgptAuthTokensRefreshParams} */ params) => {
    refreshes.push(params);
    const accountId = params.previousAccountId ?? lib.ACCOUNT_ID;
    process.stderr.write(`vscode-host: refresh asked (${params.reason}); answering for ${accountId}\n`);
    /** @type {import('../../docs/schema/authbridge').ChatgptAuthTokensRefreshResponse} */
    const answer = { accessToken: lib.refreshedToken(accountId), chatgptAccountId: accountId, chatgptPlanType: lib.PLAN_TYPE };
    return answer;
  });
  connection.onNotification((method, params) => {
    notifications.push(method);
    if (method === 'account/login/completed') {
      onLoginCompleted(/** @type {import('../../docs/schema/authbridge').AccountLoginCompletedNotification} */ (params));
    } else if (method === 'item/agentMessage/delta') {
      const delta = /** @type {import('../../docs/schema/authbridge').AgentMessageDeltaNotification} */ (params);
      streamed += delta.delta;
      process.stdout.write(delta.delta);
    } else if (method === 'turn/completed') {
      const done = /** @type {import('../../docs/schema/authbridge').TurnNotification} */ (params);
      completedTurns.set(done.turn.id, done);
      turnWaiters.get(done.turn.id)?.(done);
    }
  });
  connection.listen();

  try {
    /** @type {import('../../docs/schema/authbridge').InitializeParams} */
    const init = { clientInfo: { name: 'vscode-host-example', title: 'authbridge VS Code-style host', version: '0.1.0' }, capabilities: { proactiveTokenRefresh: false } };
    /** @type {import('../../docs/schema/authbridge').InitializeResponse} */
    const hello = await wait(connection.sendRequest('initialize', init), STEP_MS, 'initialize');
    process.stderr.write(`vscode-host: connected to ${hello.serverInfo.name} ${hello.serverInfo.version}\n`);
    await connection.sendNotification('initialized', {});

    /** @type {import('../../docs/schema/authbridge').LoginAccountParams} */
    const login = { type: 'chatgptAuthTokens', accessToken: lib.loginToken(), chatgptAccountId: lib.ACCOUNT_ID, chatgptPlanType: lib.PLAN_TYPE };
    /** @type {import('../../docs/schema/authbridge').LoginAccountResponse} */
    const loggedIn = await wait(connection.sendRequest('account/login/start', login), STEP_MS, 'account/login/start');
    if (loggedIn.type !== 'chatgptAuthTokens') throw new Error(`login answered ${JSON.stringify(loggedIn)}`);
    const completed = await wait(loginCompleted, STEP_MS, 'account/login/completed');
    if (!completed.success) throw new Error(`login failed: ${completed.error}`);

    /** @type {import('../../docs/schema/authbridge').ThreadStartParams} */
    const threadParams = {};
    /** @type {import('../../docs/schema/authbridge').ThreadStartResponse} */
    const thread = await wait(connection.sendRequest('thread/start', threadParams), STEP_MS, 'thread/start');

    /** @type {import('../../docs/schema/authbridge').TurnStartParams} */
    const turn = { threadId: thread.thread.id, input: [{ type: 'text', text: opts.input, text_elements: [] }] };
    /** @type {import('../../docs/schema/authbridge').TurnStartResponse} */
    const started = await wait(connection.sendRequest('turn/start', turn), STEP_MS, 'turn/start');
    const done = await wait(
      new Promise((resolve) => {
        const already = completedTurns.get(started.turn.id);
        if (already) resolve(already);
        else turnWaiters.set(started.turn.id, resolve);
      }),
      TURN_MS,
      `turn ${started.turn.id}`,
    );
    process.stdout.write('\n');
    const { status, error, items } = /** @type {import('../../docs/schema/authbridge').TurnNotification} */ (done).turn;
    if (status === 'failed') throw new Error(`the turn failed: ${error?.message}`);
    if (status !== 'completed') throw new Error(`the turn ended ${status}`);
    const text = items
      .map((/** @type {import('../../docs/schema/authbridge').ThreadItem} */ item) => (item.type === 'agentMessage' ? item.text : ''))
      .join('');
    if (text !== streamed) throw new Error(`turn/completed text ${JSON.stringify(text)} differs from the stream ${JSON.stringify(streamed)}`);
  } catch (e) {
    child.kill();
    connection.dispose();
    fs.rmSync(home, { recursive: true, force: true });
    throw e;
  }

  // End the session the way the protocol says: close the server's stdin, wait for it to exit.
  closing = true;
  child.stdin.end();
  const code = await lib.withDeadline(exited, EXIT_MS, 'the server exiting after its stdin closed').catch((e) => {
    child.kill();
    throw e;
  });
  connection.dispose();
  fs.rmSync(home, { recursive: true, force: true });
  if (code !== 0) throw new Error(`the server exited with code ${code} after its stdin closed`);
  return { ok: true, text: streamed, refreshes, notifications, serverExitCode: code };
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
