#include "textflag.h"

// func release32(w *atomic.Uint32, v uint32)
TEXT ·release32(SB), NOSPLIT, $0-12
	MOVQ w+0(FP), AX
	MOVL v+8(FP), BX
	MOVL BX, (AX)
	RET

// func release64(w *atomic.Uint64, v uint64)
TEXT ·release64(SB), NOSPLIT, $0-16
	MOVQ w+0(FP), AX
	MOVQ v+8(FP), BX
	MOVQ BX, (AX)
	RET
