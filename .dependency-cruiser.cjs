// The floors of raddraft (DESIGN §2): a room imports only from floors below it. Each rule forbids one room's
// imports of rooms on its own floor or above, so a back-edge fails `make test`.
const FLOORS = [
  // 1 ground: the report model, configuration, logging, small generic helpers. They may use one another.
  { floor: 1, rooms: { report: '^src/report/', config: '^src/config/', log: '^src/log\\.ts$', util: '^src/util/', version: '^src/version\\.ts$', random: '^src/seeded-random\\.ts$', types: '^src/types/' } },
  // 2 peers: one room per outside system.
  { floor: 2, rooms: { dicom: '^src/dicom/', fhir: '^src/fhir/', model: '^src/model/', hl7: '^src/hl7/' } },
  // 3 work: jobs, the outbox and the outputs.
  { floor: 3, rooms: { jobs: '^src/jobs/', outputs: '^src/outputs/' } },
  // 4 inbound: what listens.
  { floor: 4, rooms: { intake: '^src/intake/', review: '^src/review/', http: '^src/http/' } },
  // 5 entry: the commands and the one place that wires things together.
  { floor: 5, rooms: { cli: '^src/cli\\.ts$', service: '^src/service\\.ts$', doctor: '^src/doctor\\.ts$', demo: '^src/demo/', eval: '^src/eval/' } },
];

const rooms = FLOORS.flatMap(({ floor, rooms: r }) => Object.entries(r).map(([name, path]) => ({ name, path, floor })));

const forbidden = rooms
  .filter((room) => room.floor > 1)
  .map((room) => {
    const higherOrSame = rooms.filter((other) => other.name !== room.name && (other.floor > room.floor || (other.floor === room.floor && room.floor < 5)));
    return {
      name: `floor-${room.floor}-${room.name}`,
      comment: `${room.name} (floor ${room.floor}) may import only from floors below it`,
      severity: 'error',
      from: { path: room.path },
      to: { path: higherOrSame.map((o) => o.path) },
    };
  })
  .filter((rule) => rule.to.path.length > 0);

const ground = rooms.filter((room) => room.floor === 1);
forbidden.push(...ground.map((room) => ({
  name: `floor-1-${room.name}`,
  comment: `${room.name} stands on the ground floor and imports nothing of raddraft above it`,
  severity: 'error',
  from: { path: room.path },
  to: { path: rooms.filter((o) => o.floor > 1).map((o) => o.path) },
})));

forbidden.push(
  {
    name: 'no-circular',
    comment: 'folders and files that import each other cannot be understood one at a time',
    severity: 'error',
    from: { path: '^src/' },
    to: { circular: true, viaOnly: { dependencyTypesNot: ['type-only'] } },
  },
  {
    name: 'every-file-has-a-floor',
    comment: 'a file outside every room: give it a room in .dependency-cruiser.cjs',
    severity: 'error',
    from: { path: '^src/', pathNot: rooms.map((r) => r.path) },
    to: {},
  },
);

module.exports = {
  forbidden,
  options: {
    doNotFollow: { path: 'node_modules' },
    includeOnly: '^src/',
    tsConfig: { fileName: 'tsconfig.json' },
    tsPreCompilationDeps: true,
    enhancedResolveOptions: { extensions: ['.ts', '.js'] },
  },
};
