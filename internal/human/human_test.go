package human

import "fmt"

func ExampleString() {
	for _, x := range []float64{3, 999, 1000, 145000, 95471903, 1.5e9} {
		fmt.Println(String(x))
	}
	// Output:
	// 3
	// 999
	// 1k
	// 145k
	// 95.5M
	// 1.5G
}
