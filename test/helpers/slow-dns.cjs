// Preloaded into a sidecar process (node --require): lookups of names ending in `.slow` answer
// ENOTFOUND only after 5 s, as a resolver in trouble does. Other names resolve as usual.
const dns = require('node:dns');
const lookup = dns.promises.lookup;
dns.promises.lookup = function slowLookup(name, ...rest) {
  if (!String(name).endsWith('.slow')) return lookup.call(this, name, ...rest);
  return new Promise((_, reject) => setTimeout(() => reject(Object.assign(new Error(`getaddrinfo ENOTFOUND ${name}`), { code: 'ENOTFOUND' })), 5_000).unref());
};
