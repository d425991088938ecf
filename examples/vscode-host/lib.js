// lib.js — the example's small parts: the server command, minted unsigned JWTs, deadlines.
'use strict';

/** The account and plan the example's pretend identity provider signs in as. */
const ACCOUNT_ID = 'org-vscode-example';
const PLAN_TYPE = 'pro';

/**
 * The command that starts the server, as [program, ...args].
 * `AUTHBRIDGE_CMD_JSON` (a JSON array of strings) wins; else `AUTHBRIDGE_CMD` split on
 * whitespace (what the conformance kit's host mode sets; it never contains quotes);
 * else `authbridge` on PATH.
 * @param {NodeJS.ProcessEnv} env
 * @returns {string[]}
 */
function serverCommand(env) {
  const json = env.AUTHBRIDGE_CMD_JSON;
  if (json !== undefined && json.trim() !== '') {
    /** @type {unknown} */
    let argv;
    try {
      argv = JSON.parse(json);
    } catch (e) {
      throw new Error(`AUTHBRIDGE_CMD_JSON is not JSON: ${errorText(e)}`);
    }
    if (!Array.isArray(argv) || argv.length === 0 || !argv.every((a) => typeof a === 'string')) {
      throw new Error('AUTHBRIDGE_CMD_JSON must be a non-empty JSON array of strings');
    }
    return argv;
  }
  const line = env.AUTHBRIDGE_CMD;
  if (line !== undefined && line.trim() !== '') {
    return line.trim().split(/\s+/);
  }
  return ['authbridge'];
}

/**
 * Base64url without padding, as JWT segments use.
 * @param {string} text
 */
function base64url(text) {
  return Buffer.from(text, 'utf8').toString('base64url');
}

/**
 * An unsigned (`alg: none`) JWT carrying the ChatGPT claims. Real hosts get theirs from
 * the identity provider; the server only decodes the payload.
 * @param {{accountId: string, planType: string, exp: number, jti: string}} claims
 */
function mintJwt(claims) {
  const header = { alg: 'none', typ: 'JWT' };
  const payload = {
    exp: claims.exp,
    jti: claims.jti,
    email: 'dev@example.com',
    'https://api.openai.com/auth': {
      chatgpt_account_id: claims.accountId,
      chatgpt_plan_type: claims.planType,
      chatgpt_user_id: 'user-vscode-example',
    },
  };
  return `${base64url(JSON.stringify(header))}.${base64url(JSON.stringify(payload))}.${base64url('unsigned')}`;
}

/** The token the example logs in with: fresh each run, so no mock has been told about it. */
function loginToken() {
  const exp = Math.floor(Date.now() / 1000) + 3600;
  return mintJwt({ accountId: ACCOUNT_ID, planType: PLAN_TYPE, exp, jti: `login-${process.pid}-${Date.now()}` });
}

/**
 * The token the example answers refreshes with. It is the same on every run (fixed `exp`
 * and `jti`), so the mock provider can be started with `--token` set to it beforehand
 * (`node host.js --print-refresh-token`).
 * @param {string} accountId
 */
function refreshedToken(accountId) {
  return mintJwt({ accountId, planType: PLAN_TYPE, exp: 4102444800, jti: 'vscode-host-refreshed' });
}

/**
 * Resolves like `promise`, or rejects with `<what> took longer than <ms> ms`.
 * @template T
 * @param {Promise<T>} promise
 * @param {number} ms
 * @param {string} what
 * @returns {Promise<T>}
 */
function withDeadline(promise, ms, what) {
  /** @type {NodeJS.Timeout | undefined} */
  let timer;
  const timeout = new Promise((_resolve, reject) => {
    timer = setTimeout(() => reject(new Error(`${what} took longer than ${ms} ms`)), ms);
  });
  return /** @type {Promise<T>} */ (Promise.race([promise, timeout])).finally(() => clearTimeout(timer));
}

/**
 * A message for any thrown value (vscode-jsonrpc rejects with ResponseError objects).
 * @param {unknown} e
 */
function errorText(e) {
  if (e && typeof e === 'object' && 'message' in e) {
    const code = 'code' in e ? ` (code ${String(e.code)})` : '';
    return `${String(e.message)}${code}`;
  }
  return String(e);
}

module.exports = { ACCOUNT_ID, PLAN_TYPE, serverCommand, mintJwt, loginToken, refreshedToken, withDeadline, errorText };
