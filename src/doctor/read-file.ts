// The files doctor reads (SVID, key, bundles, the join token), bounded as the sidecar reads
// them (src/bounded-file.ts): a FIFO with no writer in identity.files.cert held `meshcar doctor`
// for ever in a blocking open, and /dev/zero would have been read until memory ran out. A pipe
// gets the probes' timeout (3 s, or doctor's --timeout), not the sidecar's 10 s: doctor answers in seconds.

import { BoundedReadError, readBoundedFile } from '../bounded-file.js';
import { MAX_PEM_FILE_BYTES } from '../identity/pem-files.js';
import { defaultProbeBound } from './probe.js';

/** The file as UTF-8 text; fs errors (ENOENT) as fs throws them, a BoundedReadError for a device, a huge file or a silent pipe. */
export async function readCheckedFile(file: string): Promise<string> {
  try {
    return (await readBoundedFile(file, MAX_PEM_FILE_BYTES, defaultProbeBound().ms)).toString('utf8');
  } catch (err) {
    // its message says what the file is, not which: "cannot read the SVID files" names three
    if (err instanceof BoundedReadError) throw new BoundedReadError(`${file} ${err.message}`, err.code);
    throw err;
  }
}
