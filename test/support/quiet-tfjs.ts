// Loaded by mocha before the tests: tfjs' "install the node backend" banner is noise in test
// output (the backend under test is chosen explicitly by each suite).
import * as tf from '@tensorflow/tfjs';

tf.env().set('PROD', true);
