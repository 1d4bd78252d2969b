// A path (or any word) put into a command a message tells the user to run: quoted as a POSIX
// shell reads it, so the command pasted into a shell runs on that path and nothing else. A CA
// folder "certs/my ca" made "meshcar ca root add --dir certs/my ca", which a shell reads as
// --dir certs/my and a stray argument; a folder named "ca;reboot" would have run reboot.

/** Characters a shell word may hold unquoted and mean themselves. */
const PLAIN = /^[A-Za-z0-9_\-.,:/@%+=]+$/;

/** `text` as one shell word: as it is when plain, else in single quotes (a ' inside as '\''). */
export function shellWord(text: string): string {
  return PLAIN.test(text) ? text : `'${text.replace(/'/g, `'\\''`)}'`;
}
