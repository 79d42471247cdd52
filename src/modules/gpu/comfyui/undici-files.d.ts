// Types for the undici files undici-parts.ts loads one by one: the same classes the package's index exports.
declare module 'undici/lib/dispatcher/dispatcher' {
  import type { Dispatcher } from 'undici';
  const DispatcherClass: typeof Dispatcher;
  export = DispatcherClass;
}
declare module 'undici/lib/dispatcher/pool' {
  import type { Pool } from 'undici';
  const PoolClass: typeof Pool;
  export = PoolClass;
}
declare module 'undici/lib/api' {
  const api: Record<string, unknown>;
  export = api;
}
declare module 'undici/lib/web/fetch/formdata' {
  import type { FormData } from 'undici';
  export const FormData: typeof FormData;
}
