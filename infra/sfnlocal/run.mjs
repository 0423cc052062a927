// Runs a state machine definition offline with aws-local-stepfunctions
// (Node 22), for hookstep's tests: every Task state is answered by POSTing
// its input to a Lambda runtime emulator (the real deliver bootstrap), and
// every Wait state, and every retrier's interval, is shortened to a few
// milliseconds.
//
// Reads one JSON object on stdin:
//   {"definition": {...}, "input": {...}, "invokeUrl": "http://127.0.0.1:N/...", "waitMs": 5}
// Writes one JSON object on stdout:
//   {"status": "SUCCEEDED", "output": ..., "states": [...]}  or
//   {"status": "FAILED", "error": "...", "cause": "...", "states": [...]}
// where states lists the states entered, in order.
import { StateMachine, ExecutionError } from 'aws-local-stepfunctions';

const chunks = [];
for await (const chunk of process.stdin) chunks.push(chunk);
const { definition, input, invokeUrl, waitMs } = JSON.parse(Buffer.concat(chunks).toString());

async function invoke(payload) {
  const res = await fetch(invokeUrl, { method: 'POST', body: JSON.stringify(payload) });
  const body = await res.json();
  if (!res.ok || body?.errorType) {
    // What Step Functions reports for a function error.
    const err = new Error(body?.errorMessage ?? `invoke failed: ${res.status}`);
    err.name = body?.errorType ?? 'Lambda.Unknown';
    throw err;
  }
  return body;
}

const tasks = {};
const waits = {};
const retries = {};
for (const [name, state] of Object.entries(definition.States)) {
  if (state.Retry) retries[name] = waitMs;
  if (state.Type === 'Task') {
    // A lambda:invoke integration passes {FunctionName, Payload} and
    // returns {Payload: result}; a direct function ARN passes the payload.
    const integration = state.Resource.startsWith('arn:aws:states:::lambda:invoke');
    tasks[name] = async (taskInput) =>
      integration ? { StatusCode: 200, Payload: await invoke(taskInput.Payload) } : invoke(taskInput);
  }
  if (state.Type === 'Wait') waits[name] = waitMs;
}

const machine = new StateMachine(definition, { validationOptions: { checkArn: false } });
const execution = machine.run(input, { overrides: { taskResourceLocalHandlers: tasks, waitTimeOverrides: waits, retryIntervalOverrides: retries } });
const states = [];
const collect = (async () => {
  for await (const ev of execution.eventLogs) {
    if (ev.type === 'StateEntered') states.push(ev.state.name);
  }
})();

let out;
try {
  out = { status: 'SUCCEEDED', output: await execution.result };
} catch (err) {
  const cause = err instanceof ExecutionError ? err.getCause?.() ?? err.cause : err;
  out = { status: 'FAILED', error: cause?.name ?? err.name, cause: cause?.message ?? err.message };
}
await Promise.race([collect, new Promise((r) => setTimeout(r, 100))]);
process.stdout.write(JSON.stringify({ ...out, states }) + '\n');
