import { runWorkerProcess } from './run';

runWorkerProcess('video');
