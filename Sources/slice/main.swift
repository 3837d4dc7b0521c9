print("slice")
