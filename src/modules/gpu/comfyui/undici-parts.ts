import Dispatcher from 'undici/lib/dispatcher/dispatcher';
import Pool from 'undici/lib/dispatcher/pool';
import requestApi from 'undici/lib/api';
import type { FormData as UndiciFormData } from 'undici';

/**
 * The pieces of undici the ComfyUI client uses, loaded on their own: a connection Pool with the request API now,
 * and FormData when an image is uploaded. undici's index also loads fetch, WebSocket, EventSource, the cache, the
 * mock agents and every interceptor (about 110 modules and 8 MB of resident memory in every gpu process, none of it
 * used here). The package has no "exports" map, so these are its published files; the lockfile pins the version and
 * test/gpu/undici-parts.spec.ts checks they are the very classes the index exports.
 */

// What undici's index does on load: the request API lives on every dispatcher.
Object.assign(Dispatcher.prototype, requestApi);

export { Pool };

/** undici's FormData (Node's global one is another undici's and is not accepted as a request body). */
export function loadFormData(): typeof UndiciFormData {
  // eslint-disable-next-line @typescript-eslint/no-require-imports -- loaded on first upload only
  return (require('undici/lib/web/fetch/formdata') as { FormData: typeof UndiciFormData }).FormData;
}
