// LightFi: put a valid access token on every request of this collection.
// Needs `lightfi-token serve` running (port 8787 by default) and the
// environment variable `lightfi_key` set to what `lightfi-token serve --show-key`
// prints. The token is only set on the outgoing request's header: it is never
// stored in a variable, so it is neither saved nor synced.
const tokenUrl = pm.environment.get("lightfi_token_url") || "http://127.0.0.1:8787/token";
const key = pm.environment.get("lightfi_key");
// A failure is reported as a failed test (Postman's Test Results, newman's
// report) and on the console, and the request is not sent without a token.
const fail = (problem) => {
  console.error(problem);
  pm.test(problem, () => {
    throw new Error(problem);
  });
  if (pm.execution && pm.execution.skipRequest) pm.execution.skipRequest();
};
if (!key) {
  fail("LightFi: set the environment variable lightfi_key to what `lightfi-token serve --show-key` prints");
} else {
  pm.sendRequest({ url: tokenUrl, method: "GET", header: [{ key: "X-Lightfi-Key", value: key }] }, onToken);
}
function onToken(err, res) {
  if (err) {
    fail(`LightFi: cannot reach ${tokenUrl} (${err.code || err.message}): start \`lightfi-token serve\``);
    return;
  }
  let body = {};
  try {
    body = res.json();
  } catch (e) {
    // Reported below with the status.
  }
  if (res.code !== 200 || typeof body.access_token !== "string") {
    const why = [body.message, body.hint].filter(Boolean).join("; ");
    fail(`LightFi: lightfi-token serve answered ${res.code}${why ? ": " + why : ""}`);
    return;
  }
  pm.request.headers.upsert({ key: "Authorization", value: `Bearer ${body.access_token}` });
}
