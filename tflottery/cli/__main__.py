from tflottery.cli.commands import main

main()
