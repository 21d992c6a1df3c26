// Test driver: requests through integrations/node/lightfi-fetch.mjs.
//
// usage: node drive_node.mjs MODULE URL N sequential|parallel
// Prints one status code per line (in request order).

import { pathToFileURL } from "node:url";

const [modulePath, url, n, mode] = process.argv.slice(2);
const { lightfiFetch } = await import(pathToFileURL(modulePath).href);

const send = () =>
  lightfiFetch(url, {
    method: "POST",
    headers: { "Content-Type": "application/json" },
    body: JSON.stringify({ n: 1 }),
  }).then(async (res) => {
    await res.text();
    return res.status;
  });

let statuses = [];
if (mode === "parallel") {
  statuses = await Promise.all(Array.from({ length: Number(n) }, send));
} else {
  for (let i = 0; i < Number(n); i++) statuses.push(await send());
}
console.log(statuses.join("\n"));
