/**
 * One script registry: every Lua script is declared in src/redis/scripts and run by hash through
 * src/redis/lua-script.ts (EVALSHA, loaded once per process). Anywhere else in src, these are refused by ESLint's
 * no-restricted-syntax (eslint.config.mjs); test/boundaries/script-registry-rule.spec.ts runs them on bad code.
 */
const MESSAGE = 'Run Lua through a script of the registry (src/redis/scripts), not a bare EVAL / SCRIPT / FCALL.';

module.exports = [
  {
    // ioredis' own methods for scripts and functions, and defineCommand (a second, per-client registry).
    selector:
      'CallExpression[callee.property.name=/^(eval|evalsha|eval_ro|evalsha_ro|evalRo|evalshaRo|fcall|fcall_ro|script|function|defineCommand)$/]',
    message: MESSAGE,
  },
  {
    // The same commands sent by name: redis.call('EVAL', …), redis.sendCommand(…).
    selector:
      'CallExpression[callee.property.name=/^(call|callBuffer|send_command)$/][arguments.0.value=/^(eval|evalsha|eval_ro|evalsha_ro|script|function|fcall|fcall_ro)$/i]',
    message: MESSAGE,
  },
  {
    selector: "NewExpression[callee.name='LuaScript']",
    message: 'Declare Lua scripts in src/redis/scripts (the one registry).',
  },
];
