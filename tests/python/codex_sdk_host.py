"""A host written with OpenAI's own Python SDK for the Codex app-server (`openai-codex`),
pointed at a server binary through `CodexConfig.codex_bin` -- no shim, no launch override:
the SDK itself launches `<codex_bin> [--config k=v]... app-server --listen stdio://`.

Run by `tests/tests/codex_sdk.rs`, which owns the loopback mock provider and checks what it
recorded. Usage: `python codex_sdk_host.py PHASE CONFIG_JSON`; CONFIG_JSON has `codex_bin`,
`config_overrides`, `env`, and the phase's tokens. One line of JSON per step goes to stdout:
`{"step": NAME, "ok": true, ...facts}` or `{"step": NAME, "ok": false, "error": "..."}`;
the process exits 0 when every step passed.

Phases:
- `conversation`: initialize, `chatgptAuthTokens` login, `thread_start`, a turn whose first
  provider call gets 401 (the SDK's server-request handler answers
  `account/chatgptAuthTokens/refresh`), a second turn in the same thread, `models()`,
  account read, logout.
- `interrupt`: login, a thread, a turn interrupted after its first streamed delta.
- `high_level`: the SDK's `Codex` class: API-key login, `models()`, `thread_start()`,
  `Thread.run()`, `account()`, `logout()`.
"""

import json
import sys
import threading
import traceback

from openai_codex import Codex, CodexConfig, Thread
from openai_codex.client import CodexClient

# Every wait below has a deadline: a hung server fails the step instead of the whole run.
STEP_DEADLINE_S = 20.0

failures = 0


def emit(step, ok, **facts):
    global failures
    if not ok:
        failures += 1
    print(json.dumps({"step": step, "ok": ok, **facts}), flush=True)


def step(name, fn):
    """Runs one step within the deadline; its value, or None when it failed."""
    box = {}

    def run():
        try:
            box["value"] = fn()
        except BaseException as exc:  # noqa: BLE001 - every failure is reported
            box["error"] = f"{type(exc).__name__}: {exc}"
            box["trace"] = traceback.format_exc(limit=6)

    t = threading.Thread(target=run, daemon=True)
    t.start()
    t.join(STEP_DEADLINE_S)
    if t.is_alive():
        emit(name, False, error=f"no result within {STEP_DEADLINE_S}s")
        return None
    if "error" in box:
        emit(name, False, error=box["error"], trace=box["trace"])
        return None
    value = box.get("value")
    facts = value if isinstance(value, dict) else {}
    emit(name, True, **facts)
    return value if value is not None else {}


def config_of(cfg):
    return CodexConfig(
        codex_bin=cfg["codex_bin"],
        config_overrides=tuple(cfg.get("config_overrides", [])),
        env=cfg.get("env"),
        cwd=cfg.get("cwd"),
    )


def refresh_handler(cfg, seen):
    """The SDK's server-request handler: answers the token refresh with the host's tokens."""

    def handle(method, params):
        seen.append({"method": method, "params": params})
        if method == "account/chatgptAuthTokens/refresh":
            return {
                "accessToken": cfg["fresh_token"],
                "chatgptAccountId": cfg["account_id"],
                "chatgptPlanType": "pro",
            }
        return {}

    return handle


def login_tokens(client, cfg, token):
    response = client.account_login_start(
        {
            "type": "chatgptAuthTokens",
            "accessToken": token,
            "chatgptAccountId": cfg["account_id"],
            "chatgptPlanType": "pro",
        }
    )
    return {"type": response.root.type}


def streamed_turn(thread, text):
    """Runs one turn through the SDK's turn handle; what the host saw of it."""
    handle = thread.turn(text)
    deltas, agent_texts, status, error = [], [], None, None
    for event in handle.stream():
        payload = event.payload
        if event.method == "item/agentMessage/delta":
            deltas.append(payload.delta)
        elif event.method == "item/completed":
            item = payload.item.root if hasattr(payload.item, "root") else payload.item
            if getattr(item, "type", None) == "agentMessage":
                agent_texts.append(item.text)
        elif event.method == "turn/completed":
            turn = payload.turn
            status = str(getattr(turn.status, "value", turn.status))
            error = None if turn.error is None else turn.error.message
    return {
        "turn_id": handle.id,
        "status": status,
        "streamed_text": "".join(deltas),
        "agent_message": agent_texts[-1] if agent_texts else None,
        "error": error,
    }


def conversation(cfg):
    seen = []
    client = CodexClient(config=config_of(cfg), approval_handler=refresh_handler(cfg, seen))
    try:
        step("start", client.start)
        init = step("initialize", lambda: {"userAgent": client.initialize().userAgent})
        if init is None:
            return
        step("login chatgptAuthTokens", lambda: login_tokens(client, cfg, cfg["stale_token"]))
        started = step(
            "thread_start",
            lambda: {"thread_id": client.thread_start({"ephemeral": True}).thread.id},
        )
        if started is None:
            return
        thread = Thread(client, started["thread_id"])

        def first_turn():
            facts = streamed_turn(thread, cfg["first_input"])
            facts["refresh_requests"] = [s for s in seen if s["method"] == "account/chatgptAuthTokens/refresh"]
            return facts

        step("turn healed by a refresh", first_turn)
        step("second turn", lambda: streamed_turn(thread, cfg["second_input"]))
        step("thread read", lambda: {"thread_id": thread.read().thread.id})
        step("models()", lambda: {"ids": [m.id for m in client.model_list().data]})
        step(
            "account read",
            lambda: {"account": client.account_read({"refreshToken": False}).model_dump(mode="json", by_alias=True)["account"]},
        )
        step("logout", lambda: {"result": client.account_logout().model_dump(mode="json")})
        step(
            "account read after logout",
            lambda: {"account": client.account_read({}).model_dump(mode="json", by_alias=True)["account"]},
        )
    finally:
        client.close()


def interrupt(cfg):
    seen = []
    client = CodexClient(config=config_of(cfg), approval_handler=refresh_handler(cfg, seen))
    try:
        client.start()
        if step("initialize", lambda: {"userAgent": client.initialize().userAgent}) is None:
            return
        step("login chatgptAuthTokens", lambda: login_tokens(client, cfg, cfg["fresh_token"]))
        started = step(
            "thread_start",
            lambda: {"thread_id": client.thread_start({"ephemeral": True}).thread.id},
        )
        if started is None:
            return
        thread = Thread(client, started["thread_id"])

        def interrupted_turn():
            handle = thread.turn(cfg["first_input"])
            deltas = []
            interrupted = False
            status = None
            for event in handle.stream():
                if event.method == "item/agentMessage/delta":
                    deltas.append(event.payload.delta)
                    if not interrupted:
                        handle.interrupt()
                        interrupted = True
                if event.method == "turn/completed":
                    status = str(getattr(event.payload.turn.status, "value", event.payload.turn.status))
            return {"status": status, "deltas": deltas}

        step("interrupt", interrupted_turn)
    finally:
        client.close()


def high_level(cfg):
    def run():
        with Codex(config_of(cfg)) as codex:
            out = {}
            codex.login_api_key(cfg["api_key"])
            out["models"] = [m.id for m in codex.models().data]
            thread = codex.thread_start(ephemeral=True)
            out["final_response"] = thread.run(cfg["first_input"]).final_response
            account = codex.account().model_dump(mode="json", by_alias=True)["account"]
            out["account_type"] = None if account is None else account.get("type")
            codex.logout()
            out["account_after_logout"] = codex.account().model_dump(mode="json", by_alias=True)["account"]
            return out

    step("Codex class: login_api_key, models, thread_start, run, account, logout", run)


def main():
    phase, cfg = sys.argv[1], json.loads(sys.argv[2])
    {"conversation": conversation, "interrupt": interrupt, "high_level": high_level}[phase](cfg)
    sys.exit(1 if failures else 0)


if __name__ == "__main__":
    main()
