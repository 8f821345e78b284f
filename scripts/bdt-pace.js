// Loaded into the Bulk Data Tester with `node --require scripts/bdt-pace.js` (tests/bdt/test_bdt.py).
// bdt asks the token endpoint for a new access token in nearly every test; ketnoi allows each
// address 20 token requests at once, then 5 a second (ketnoi/api/auth_routes.py: a brake on
// credential guessing), so a full run is answered 429 slow_down half-way. Rather than loosen the
// server, this holds bdt's token requests back to a slightly smaller bucket (18 at once, then 4.5 a
// second). Other requests are untouched.
"use strict";
const http = require("http");

const BURST = 18;
const RATE_PER_MS = 4.5 / 1000;
let tokens = BURST;
let stamp = Date.now();
let queue = Promise.resolve();

function slot() {
    // One at a time, in order: each waits until the bucket holds a whole token, then takes it.
    const turn = queue.then(async () => {
        for (;;) {
            const now = Date.now();
            tokens = Math.min(BURST, tokens + (now - stamp) * RATE_PER_MS);
            stamp = now;
            if (tokens >= 1) {
                tokens -= 1;
                return;
            }
            await new Promise((resolve) => setTimeout(resolve, Math.ceil((1 - tokens) / RATE_PER_MS)));
        }
    });
    queue = turn;
    return turn;
}

const addRequest = http.Agent.prototype.addRequest;
http.Agent.prototype.addRequest = function (req, options) {
    if (req.method === "POST" && /\/auth\/token(\?|$)/.test(req.path)) {
        slot().then(() => addRequest.call(this, req, options));
        return;
    }
    return addRequest.call(this, req, options);
};
