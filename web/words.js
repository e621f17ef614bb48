// What the API's codes mean, in words: the one table of call end reasons (docs/protocol.md,
// `session.ended.reason`) every page shows instead of the raw code.

const END_REASONS = {
  // reason: [said to the rep about their own call, said to anyone else]
  rep_ended: ["You ended the call.", "The rep ended the call."],
  persona_ended: ["The buyer ended the call.", "The buyer ended the call."],
  idle_timeout: ["Nobody spoke for a minute, so the call ended.", "Nobody spoke for a minute, so the call ended."],
  max_duration: ["The call reached the longest a call may last.", "The call reached the longest a call may last."],
  client_disconnected: ["Your connection dropped and did not come back in time.",
    "The rep's connection dropped and did not come back in time."],
  deleted: ["The call was deleted.", "The call was deleted."],
  owner_lost: ["The server running the call stopped, and nobody rejoined it in time.",
    "The server running the call stopped, and nobody rejoined it in time."],
  access_revoked: ["You were signed out or removed from the team during the call.",
    "The rep was signed out or removed from the team during the call."],
  vapi_timeout: ["The phone call never reported its end, so it was closed.",
    "The phone call never reported its end, so it was closed."],
};

/** `reason` in words; `mine`: said to the rep whose call it was. An unknown reason (a VAPI
 * `endedReason`, say) is still shown as words, not as a code. */
export function endReason(reason, { mine = false } = {}) {
  if (!reason) return "";
  const known = END_REASONS[reason];
  if (known) return known[mine ? 0 : 1];
  const words = String(reason).replace(/[-_.]+/g, " ").trim();
  return `The call ended (${words}).`;
}

const STATUS = { created: "Not started", live: "Live now", ended: "Ended" };

export function statusWords(status) {
  return STATUS[status] || status;
}
