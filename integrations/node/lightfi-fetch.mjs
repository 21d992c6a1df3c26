// LightFi API access for Node.js >= 18: a fetch() that adds a valid access
// token from lightfi-token. ES module, no dependencies; copy it next to your code.
//
//   import { lightfiFetch } from "./lightfi-fetch.mjs";
//   const res = await lightfiFetch("https://api.lightfi.example/v1/sites");
//
//   import { createLightfiFetch } from "./lightfi-fetch.mjs";
//   const stagingFetch = createLightfiFetch({ args: ["--profile", "staging"] });
//
// It runs `lightfi-token --format json` (found on PATH) when it needs a token,
// reads it from the program's stdout (never from or into argv), and keeps it
// in memory until `marginSeconds` before it expires. After a 401 it gets a
// fresh token (`--force-refresh`) and sends the request once more. Concurrent
// calls share one lightfi-token run.

import { spawn } from "node:child_process";

const EXIT_CODES = {
  2: "usage error (check the extra arguments given to lightfi-token)",
  3: "not logged in: run `lightfi-token login`",
  4: "configuration error (client id, config.toml or client secret)",
  5: "the LightFi authorization server is unreachable or failing; retry later",
  6: "another lightfi-token process held the profile's lock too long",
};

// After a forced refresh, a 401 within this time is not answered by another
// refresh: a brand-new token that is rejected will not be fixed by the next
// one, and the token endpoint is rate-limited.
const REFRESH_BACKOFF_MS = 30_000;

export class LightfiTokenError extends Error {
  constructor(message, exitCode) {
    super(message);
    this.name = "LightfiTokenError";
    this.exitCode = exitCode;
  }
}

/** Run lightfi-token; resolve to its parsed json format. */
function runLightfiToken(command, args) {
  return new Promise((resolve, reject) => {
    // stdin and stderr are inherited: at a terminal lightfi-token may run a
    // browser login and show its URL; only stdout is read.
    const child = spawn(command, [...args, "--format", "json"], { stdio: ["inherit", "pipe", "inherit"] });
    const chunks = [];
    child.stdout.on("data", (c) => chunks.push(c));
    child.on("error", (err) =>
      reject(
        err.code === "ENOENT"
          ? new LightfiTokenError(`${command} was not found on PATH: install lightfi-token, or pass { command }`)
          : err,
      ),
    );
    child.on("close", (code) => {
      if (code !== 0) {
        const reason = EXIT_CODES[code] ?? "unexpected failure";
        reject(new LightfiTokenError(`lightfi-token exited with status ${code}: ${reason} (its message is on stderr)`, code));
        return;
      }
      try {
        const answer = JSON.parse(Buffer.concat(chunks).toString("utf8"));
        if (typeof answer.access_token !== "string" || typeof answer.expires_in !== "number") throw new Error();
        resolve(answer);
      } catch {
        reject(new LightfiTokenError("lightfi-token printed something other than its json format"));
      }
    });
  });
}

/**
 * A token source: `await source.token()`, cached in memory.
 * Options: command (default "lightfi-token"), args (e.g. ["--profile", "staging"]),
 * marginSeconds (default 60).
 */
export function createLightfiToken({ command = "lightfi-token", args = [], marginSeconds = 60 } = {}) {
  let cached = null; // { token, deadline } (performance.now() milliseconds)
  let inFlight = null; // the running fetch, shared by concurrent callers
  let forcedAt = null;

  const valid = () => (cached && performance.now() < cached.deadline ? cached.token : null);

  function fetchToken(forceRefresh) {
    if (!inFlight) {
      const started = performance.now();
      inFlight = runLightfiToken(command, forceRefresh ? [...args, "--force-refresh"] : args)
        .then((answer) => {
          cached = { token: answer.access_token, deadline: started + (answer.expires_in - marginSeconds) * 1000 };
          return answer.access_token;
        })
        .finally(() => {
          inFlight = null;
        });
    }
    return inFlight;
  }

  return {
    /** A token valid for at least marginSeconds more. */
    async token() {
      return valid() ?? fetchToken(false);
    },
    /** The token to retry with after `rejected` got a 401, or null not to retry. */
    async after401(rejected) {
      const current = valid();
      if (current && current !== rejected) return current; // already replaced
      if (inFlight) return inFlight;
      if (forcedAt !== null && performance.now() - forcedAt < REFRESH_BACKOFF_MS) return null;
      forcedAt = performance.now();
      return fetchToken(true);
    },
  };
}

/**
 * A fetch() that sends `Authorization: Bearer <token>`.
 * Options: those of createLightfiToken, or `source` (one from it, to share);
 * `fetch` (the underlying fetch, default globalThis.fetch).
 */
export function createLightfiFetch({ source, fetch: baseFetch = globalThis.fetch, ...tokenOptions } = {}) {
  const tokens = source ?? createLightfiToken(tokenOptions);
  return async function lightfiFetch(input, init) {
    const request = new Request(input, init);
    // Kept aside so the body can be sent again after a 401.
    const spare = request.clone();
    const token = await tokens.token();
    request.headers.set("Authorization", `Bearer ${token}`);
    const response = await baseFetch(request);
    if (response.status !== 401) return response;
    // A 401 from the origin a redirect led to is not cured by a new token.
    if (response.redirected && new URL(response.url).origin !== new URL(request.url).origin) return response;
    const retryToken = await tokens.after401(token);
    if (retryToken === null) return response;
    await response.body?.cancel();
    spare.headers.set("Authorization", `Bearer ${retryToken}`);
    return baseFetch(spare);
  };
}

/** A fetch() for the default profile, sharing one cache in this process. */
export const lightfiFetch = createLightfiFetch();
