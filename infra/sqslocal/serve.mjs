// Serves the SQS API (JSON protocol) in memory with fauxqs, for hookstep's
// tests: `node serve.mjs PORT` listens on 127.0.0.1:PORT until killed.
//
// fauxqs's own CLI listens on every interface (0.0.0.0), so the tests start
// it through its library instead. The queue URLs it returns look like
// http://sqs.us-east-1.localhost:PORT/000000000000/NAME; clients send every
// call to the endpoint, never to that host, so the name only needs to be
// stable.
import { buildApp } from 'fauxqs';

const port = Number(process.argv[2]);
if (!Number.isInteger(port) || port <= 0) {
  console.error('usage: node serve.mjs PORT');
  process.exit(2);
}
const app = buildApp({ logger: false, host: 'localhost' });
await app.listen({ port, host: '127.0.0.1' });
