/** The script registry: every Lua script of the service, by domain. Importing this module registers them all. */
export * from './blob.scripts';
export * from './bot.scripts';
export * from './gpu.scripts';
export * from './job.scripts';
export * from './lease.scripts';
export * from './stream.scripts';
