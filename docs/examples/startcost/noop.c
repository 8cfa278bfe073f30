/* A C program that does nothing: what exec and exit cost by themselves
   (bench spawn -exec; lesson 1). gcc -O2 -o /tmp/noop docs/examples/startcost/noop.c */
int main(void) { return 0; }
