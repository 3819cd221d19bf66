import { runWorkerProcess } from './run';

runWorkerProcess('light');
