// A certificate's notBefore and notAfter as this host reads them, or why it cannot. Node shows
// them as OpenSSL prints them ("Jan  1 00:00:00 2030 GMT"), and one OpenSSL cannot read (month
// 13, hour 24, no zone) as "Bad time value": new Date() of that is NaN, which compares false
// both ways, so "expired" and "not yet valid" checks passed it and toISOString() threw.
// (Node 20 has no validFromDate/validToDate.) Date.parse also reads year 0 or 1 as 2000 or 2001:
// the printed form is parsed here, its year as written.

import type { X509Certificate } from 'node:crypto';

export interface CertificateDates {
  readonly notBefore: Date;
  readonly notAfter: Date;
}

const MONTHS = ['Jan', 'Feb', 'Mar', 'Apr', 'May', 'Jun', 'Jul', 'Aug', 'Sep', 'Oct', 'Nov', 'Dec'];
// ASN1_TIME_print: month, day (%2d), time, optional fraction, year (%d), GMT
const PRINTED = /^([A-Z][a-z]{2}) {1,2}(\d{1,2}) (\d{2}):(\d{2}):(\d{2})(\.\d+)? (\d{1,4}) GMT$/;

/** One printed date (validFrom/validTo), or undefined when this host cannot read it. */
export function readPrintedDate(text: string): Date | undefined {
  const m = PRINTED.exec(text);
  if (m === null) {
    // a form this parser does not know (a later Node): taken only as a whole, real date
    const ms = Date.parse(text);
    return Number.isFinite(ms) ? new Date(ms) : undefined;
  }
  const month = MONTHS.indexOf(m[1] as string);
  const [day, hour, minute, second, year] = [m[2], m[3], m[4], m[5], m[7]].map(Number) as [number, number, number, number, number];
  const ms = m[6] ? Math.floor(Number(`0${m[6]}`) * 1000) : 0;
  const date = new Date(0);
  date.setUTCFullYear(year, month, day); // setUTCFullYear keeps years below 100 as written
  date.setUTCHours(hour, minute, second, ms);
  const same = date.getUTCFullYear() === year && date.getUTCMonth() === month && date.getUTCDate() === day && date.getUTCHours() === hour && date.getUTCMinutes() === minute && date.getUTCSeconds() === second;
  return month !== -1 && same && Number.isFinite(date.getTime()) ? date : undefined;
}

/** The two dates, or a one-line reason naming the date(s) this host cannot read, as printed. */
export function certificateDates(cert: X509Certificate): CertificateDates | string {
  const notBefore = readPrintedDate(cert.validFrom);
  const notAfter = readPrintedDate(cert.validTo);
  if (notBefore && notAfter) return { notBefore, notAfter };
  const bad = [notBefore ? '' : `its notBefore is ${JSON.stringify(cert.validFrom)}`, notAfter ? '' : `its notAfter is ${JSON.stringify(cert.validTo)}`];
  return bad.filter(Boolean).join(' and ');
}

/** Why the certificate's dates cannot be read, as the rest of a refusal's line, or undefined. */
export function unreadableDatesProblem(cert: X509Certificate): string | undefined {
  const dates = certificateDates(cert);
  return typeof dates === 'string' ? `has a validity date this host cannot read: ${dates}` : undefined;
}
