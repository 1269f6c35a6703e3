/* The LSTM layer with a planted fault: the forget gate's gradient 10% too
 * large. test_grad checks that the finite differences catch it. */
#define LSTM_PLANTED_FAULT 1.1f
#define lstm_layer_forward faulty_lstm_layer_forward
#define lstm_layer_backward faulty_lstm_layer_backward
#define lstm_layer_step faulty_lstm_layer_step
#define times_wt faulty_times_wt
#include "trainer/nn/lstm.c"
