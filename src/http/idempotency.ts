// Which requests may be sent twice: both directions resend a request only when repeating it
// has the effect of sending it once, so a retry can never make the app charge a card twice.

/** Methods whose repetition has the effect of one request (RFC 9110 §9.2.2). */
const IDEMPOTENT: ReadonlySet<string> = new Set(['GET', 'HEAD', 'OPTIONS', 'TRACE', 'PUT', 'DELETE']);

/** May this request be sent again? Idempotent by method, or made so by the caller's Idempotency-Key. */
export function isRepeatableRequest(method: string, headers: { readonly [key: string]: unknown }): boolean {
  return IDEMPOTENT.has(method) || namesAKey(headers['idempotency-key']);
}

/**
 * A key the app can recognise a repeat by: some visible character. An empty or blank
 * Idempotency-Key names no operation (the IETF draft's value is a non-empty string), so the
 * app could not tell a second charge from the first.
 */
function namesAKey(value: unknown): boolean {
  if (typeof value === 'string') return value.trim() !== '';
  return Array.isArray(value) && value.some((one) => typeof one === 'string' && one.trim() !== '');
}
