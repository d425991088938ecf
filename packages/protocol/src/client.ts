// A small typed client for Node hosts: spawns authbridge, speaks JSON-RPC to it over
// vscode-jsonrpc (the library VS Code extensions already use), and answers the server's
// token refresh requests with the host's handler. Every wait has a deadline.

import { spawn, type ChildProcess } from 'node:child_process';
import * as rpc from 'vscode-jsonrpc/node';

import type {
  ChatgptAuthTokensRefreshParams,
  ChatgptAuthTokensRefreshResponse,
  ClientCapabilities,
  ClientInfo,
  ClientNotifications,
  ClientRequests,
  InitializeResponse,
  ServerNotifications,
} from './protocol';

/** How to start the server. */
export interface SpawnOptions {
  /** The program: default `AUTHBRIDGE_BIN` from the environment, else `authbridge` on PATH. */
  command?: string;
  /** Arguments before the ones below (e.g. `["app-server", "--listen", "stdio://"]`). */
  args?: string[];
  /** The server's home (`--home`): where `config.toml` and `auth.json` live. */
  home?: string;
  /** Config overrides, each passed as `-c key=value`. */
  config?: Record<string, string | number | boolean>;
  /** The server's environment (default: this process's). */
  env?: NodeJS.ProcessEnv;
  /** Where the server's log (stderr) goes: `inherit` (default), `ignore`, or a callback per chunk. */
  stderr?: 'inherit' | 'ignore' | ((chunk: string) => void);
  /** Deadline of each request, in milliseconds (default 60000). */
  requestTimeoutMs?: number;
}

/** Answers `account/chatgptAuthTokens/refresh`: the host's fresh tokens, or a thrown error. */
export type RefreshHandler = (
  params: ChatgptAuthTokensRefreshParams,
) => ChatgptAuthTokensRefreshResponse | Promise<ChatgptAuthTokensRefreshResponse>;

/** A running authbridge and the JSON-RPC connection to it. */
export interface AuthbridgeClient {
  /** The child process. */
  readonly process: ChildProcess;
  /** Sends `initialize` (then `initialized`) and resolves to the server's answer. */
  initialize(clientInfo: ClientInfo, capabilities?: ClientCapabilities): Promise<InitializeResponse>;
  /** Sends a request and resolves to its result; rejects with the server's error or at the deadline. */
  request<M extends keyof ClientRequests>(
    method: M,
    params: ClientRequests[M]['params'],
    options?: { timeoutMs?: number },
  ): Promise<ClientRequests[M]['result']>;
  /** Sends a notification. */
  notify<M extends keyof ClientNotifications>(method: M, params?: ClientNotifications[M]): Promise<void>;
  /** Calls `handler` for every notification `method`; returns a function that stops it. */
  onNotification<M extends keyof ServerNotifications>(
    method: M,
    handler: (params: ServerNotifications[M]) => void,
  ): () => void;
  /** Calls `handler` for every notification, whatever its method (after the per-method handlers). */
  onAnyNotification(handler: (method: string, params: unknown) => void): () => void;
  /** Installs the handler that answers the server's token refresh requests. */
  onRefresh(handler: RefreshHandler): void;
  /** Closes the server's stdin and resolves to its exit code; kills it after `timeoutMs` (default 5000). */
  close(timeoutMs?: number): Promise<number | null>;
}

/** An error answer from the server, with its JSON-RPC code and data. */
export class AuthbridgeError extends Error {
  constructor(
    message: string,
    readonly code: number,
    readonly data?: unknown,
  ) {
    super(message);
    this.name = 'AuthbridgeError';
  }
}

function withDeadline<T>(promise: Promise<T>, ms: number, what: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_resolve, reject) => {
    timer = setTimeout(() => reject(new Error(`${what} got no answer within ${ms} ms`)), ms);
  });
  return Promise.race([promise, timeout]).finally(() => clearTimeout(timer));
}

/** Starts authbridge with `options` and connects to it. */
export function spawnAuthbridge(options: SpawnOptions = {}): AuthbridgeClient {
  const env = options.env ?? process.env;
  const command = options.command ?? env.AUTHBRIDGE_BIN ?? 'authbridge';
  const args = [...(options.args ?? [])];
  if (options.home !== undefined) args.push('--home', options.home);
  for (const [key, value] of Object.entries(options.config ?? {})) args.push('-c', `${key}=${value}`);
  const stderr = options.stderr ?? 'inherit';
  const child = spawn(command, args, {
    env,
    stdio: ['pipe', 'pipe', typeof stderr === 'function' ? 'pipe' : stderr],
  });
  if (typeof stderr === 'function') child.stderr?.setEncoding('utf8').on('data', stderr);
  if (!child.stdin || !child.stdout) throw new Error(`could not open pipes to ${command}`);
  const connection = rpc.createMessageConnection(
    new rpc.StreamMessageReader(child.stdout),
    new rpc.StreamMessageWriter(child.stdin),
  );
  const exited = new Promise<number | null>((resolve) => {
    child.once('exit', (code) => {
      connection.dispose();
      resolve(code);
    });
    child.once('error', () => resolve(null));
  });
  // One handler sees every notification and hands it on: vscode-jsonrpc calls a catch-all
  // handler only for methods that have no handler of their own.
  const byMethod = new Map<string, Set<(params: unknown) => void>>();
  const any = new Set<(method: string, params: unknown) => void>();
  connection.onNotification((method: string, params: unknown) => {
    for (const handler of byMethod.get(method) ?? []) handler(params);
    for (const handler of any) handler(method, params);
  });
  connection.listen();
  const requestTimeoutMs = options.requestTimeoutMs ?? 60_000;

  const request: AuthbridgeClient['request'] = async (method, params, opts) => {
    try {
      return await withDeadline(
        connection.sendRequest(method, params),
        opts?.timeoutMs ?? requestTimeoutMs,
        method,
      );
    } catch (e) {
      if (e instanceof rpc.ResponseError) throw new AuthbridgeError(e.message, e.code, e.data);
      throw e;
    }
  };

  return {
    process: child,
    async initialize(clientInfo, capabilities) {
      const result = await request('initialize', { clientInfo, capabilities });
      await connection.sendNotification('initialized');
      return result;
    },
    request,
    notify: (method, params) => connection.sendNotification(method, params),
    onNotification(method, handler) {
      const wrapped = (params: unknown) => handler(params as ServerNotifications[typeof method]);
      const set = byMethod.get(method) ?? new Set();
      set.add(wrapped);
      byMethod.set(method, set);
      return () => set.delete(wrapped);
    },
    onAnyNotification(handler) {
      any.add(handler);
      return () => any.delete(handler);
    },
    onRefresh(handler) {
      connection.onRequest('account/chatgptAuthTokens/refresh', async (params: ChatgptAuthTokensRefreshParams) => {
        try {
          return await handler(params);
        } catch (e) {
          const message = e instanceof Error ? e.message : String(e);
          return new rpc.ResponseError(-32000, message);
        }
      });
    },
    async close(timeoutMs = 5_000) {
      child.stdin?.end();
      let timer: NodeJS.Timeout | undefined;
      const killed = new Promise<number | null>((resolve) => {
        timer = setTimeout(() => {
          child.kill('SIGKILL');
          resolve(null);
        }, timeoutMs);
      });
      try {
        return await Promise.race([exited, killed]);
      } finally {
        clearTimeout(timer);
      }
    },
  };
}
